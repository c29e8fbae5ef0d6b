/* duration.c: durations as people write them ("250ms", "1.5s", "2m"), in nanoseconds. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ferry_duration_parse(const char *text, int64_t *ret_ns)
{
        static const struct {
                const char *unit;
                double ns;
        } units[] = {
                {"ns", 1},         {"us", 1e3},  {"ms", 1e6},   {"s", 1e9},
                {"", 1e9},         {"m", 60e9},  {"min", 60e9}, {"h", 3600e9},
        };
        char *end;
        double value;

        /* Digits first: strtod would also take "inf", "nan", hex and blanks. */
        if (!text || !ret_ns || !((*text >= '0' && *text <= '9') || *text == '.'))
                return -EINVAL;
        errno = 0;
        value = strtod(text, &end);
        if (end == text || errno == ERANGE || !isfinite(value) || value < 0)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].unit) == 0) {
                        double ns = value * units[i].ns;

                        if (ns >= 9.2e18)
                                return -ERANGE;
                        *ret_ns = (int64_t)ns;
                        return 0;
                }
        }
        return -EINVAL;
}
