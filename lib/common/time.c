/* time.c: the monotonic and wall clocks, and durations as people write them ("250ms",
 * "1.5s", "2m"), in nanoseconds. */
#include "common.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ferry__now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * FERRY__NSEC_PER_SEC + ts.tv_nsec;
}

int64_t ferry__realtime(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * FERRY__NSEC_PER_SEC + ts.tv_nsec;
}

int ferry_duration_parse(const char *text, int64_t *ret_ns)
{
        /* clang-format off */
        static const struct {
                const char *unit;
                double ns;
        } units[] = {
                {"ns", 1},         {"us", 1e3},  {"ms", 1e6},   {"s", 1e9},
                {"", 1e9},         {"m", 60e9},  {"min", 60e9}, {"h", 3600e9},
                {"d", 86400e9},
        };
        /* clang-format on */
        const char *p = text;
        double value = 0, scale = 1;
        bool digits = false;

        if (!text || !ret_ns)
                return -EINVAL;
        /* Plain decimal only: no sign, blanks, exponent, hex, inf or nan. */
        for (; *p >= '0' && *p <= '9'; p++, digits = true)
                value = value * 10 + (*p - '0');
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++, digits = true)
                        value += (*p - '0') * (scale /= 10);
        if (!digits)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(p, units[i].unit) == 0) {
                        double ns = value * units[i].ns;

                        if (ns >= 9.2e18)
                                return -ERANGE;
                        *ret_ns = (int64_t)(ns + 0.5);
                        return 0;
                }
        }
        return -EINVAL;
}

int ferry__format_duration(int64_t ns, char *buf, size_t size)
{
        double s = (double)ns / 1e9;
        int n;

        if (ns < FERRY__NSEC_PER_SEC)
                n = snprintf(buf, size, "%lldms", (long long)(ns / FERRY__NSEC_PER_MSEC));
        else if (s < 60)
                n = snprintf(buf, size, "%.3gs", s);
        else if (s < 3600)
                n = snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
        else
                n = snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)s / 60 % 60);
        return n < 0 ? -EIO : 0;
}
