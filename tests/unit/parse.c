/* Unit tests: the small parsers of the public API (durations, event names, policies). */
#include <criterion/criterion.h>
#include <errno.h>

#include "run.h"

Test(duration, units)
{
        int64_t ns;

        cr_assert_eq(ferry_duration_parse("250ms", &ns), 0);
        cr_assert_eq(ns, 250 * FERRY__NSEC_PER_MSEC);
        cr_assert_eq(ferry_duration_parse("1.5s", &ns), 0);
        cr_assert_eq(ns, 1500 * FERRY__NSEC_PER_MSEC);
        cr_assert_eq(ferry_duration_parse("3", &ns), 0);
        cr_assert_eq(ns, 3 * FERRY__NSEC_PER_SEC);
        cr_assert_eq(ferry_duration_parse("2m", &ns), 0);
        cr_assert_eq(ns, 120 * FERRY__NSEC_PER_SEC);
        cr_assert_eq(ferry_duration_parse("1h", &ns), 0);
        cr_assert_eq(ns, 3600 * FERRY__NSEC_PER_SEC);
        cr_assert_eq(ferry_duration_parse("10us", &ns), 0);
        cr_assert_eq(ns, 10000);
}

Test(duration, rejects_bad_text)
{
        int64_t ns = 42;
        const char *bad[] = {"",    "-1s", "+1s",  "s",     "1x",  "1 s",  " 1s",
                             "inf", "nan", "0x10", "1e400", "1ss", "1e3s", "."};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_lt(ferry_duration_parse(bad[i], &ns), 0, "accepted '%s'", bad[i]);
        cr_assert_eq(ns, 42, "out-parameter written on failure");
        cr_assert_eq(ferry_duration_parse("99999999999h", &ns), -ERANGE);
}

Test(event_names, round_trip)
{
        for (unsigned type = 1; type & FERRY_EVENT_ALL; type <<= 1) {
                const char *name = ferry_event_type_name(type);

                cr_assert_not_null(name, "type %#x has no name", type);
                cr_assert_eq(ferry_event_type_parse(name), (int)type);
        }
        cr_assert_null(ferry_event_type_name(FERRY_EVENT_ALL + 1));
        cr_assert_eq(ferry_event_type_parse("bogus"), -EINVAL);
}

Test(policy, grammar)
{
        struct ferry__policy p;

        cr_assert_eq(ferry__policy_parse("auto", &p), 0);
        cr_assert_eq(p.kind, FERRY__POLICY_AUTO);
        cr_assert_eq(ferry__policy_parse("close=250ms", &p), 0);
        cr_assert_eq(p.kind, FERRY__POLICY_CLOSE);
        cr_assert_eq(p.guard_ns, 250 * FERRY__NSEC_PER_MSEC);
        cr_assert_eq(ferry__policy_parse("settle=2s", &p), 0);
        cr_assert_eq(p.settle_ns, 2 * FERRY__NSEC_PER_SEC);
        cr_assert_eq(ferry__policy_parse("done-file", &p), 0);
        cr_assert(p.marker_is_suffix);
        cr_assert_str_eq(p.marker, ".done");
        cr_assert_eq(ferry__policy_parse("done-file=_SUCCESS", &p), 0);
        cr_assert_not(p.marker_is_suffix);
        cr_assert_str_eq(p.marker, "_SUCCESS");
        cr_assert_eq(ferry__policy_parse("rename", &p), 0);
        cr_assert_eq(p.kind, FERRY__POLICY_RENAME);
}

Test(policy, rejects_bad_text)
{
        struct ferry__policy p;
        const char *bad[] = {"",         "bogus",  "settle",     "settle=",       "settle=abc", "close=x",
                             "rename=1", "auto=x", "done-file=", "done-file=a/b", "done-file=."};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_lt(ferry__policy_parse(bad[i], &p), 0, "accepted '%s'", bad[i]);
}

Test(names, temporary)
{
        const char *temp[] = {".hidden", ".x.csv.AbC123", "a.tmp", "a.part", "a.swp", "a~", ".nfs0001", ".ferry-x"};
        const char *final[] = {"a.csv", "part", "tmp", "a.partial", "report.done"};

        for (size_t i = 0; i < sizeof(temp) / sizeof(temp[0]); i++)
                cr_assert(ferry__is_temp_name(temp[i], strlen(temp[i])), "'%s' not temporary", temp[i]);
        for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
                cr_assert_not(ferry__is_temp_name(final[i], strlen(final[i])), "'%s' temporary", final[i]);
}

Test(hash, insert_find_remove)
{
        struct item {
                struct ferry__hash_node node;
                int key;
        } items[1000];
        struct ferry__hash h = {0};

        for (int i = 0; i < 1000; i++) {
                items[i].key = i;
                cr_assert_eq(ferry__hash_insert(&h, &items[i].node, (uint32_t)i * 2654435761u), 0);
        }
        cr_assert_eq(h.count, 1000);
        for (int i = 0; i < 1000; i += 2)
                ferry__hash_remove(&h, &items[i].node);
        cr_assert_eq(h.count, 500);
        for (int i = 0; i < 1000; i++) {
                uint32_t hash = (uint32_t)i * 2654435761u;
                bool found = false;

                for (struct ferry__hash_node *n = ferry__hash_chain(&h, hash); n; n = n->next)
                        if (n->hash == hash && ((struct item *)n)->key == i)
                                found = true;
                cr_assert_eq(found, i % 2 == 1, "key %d", i);
        }
        ferry__hash_done(&h);
}
