/* scratch.h: each unit test's own scratch folder, made fresh by .init and
 * removed by .fini (Test(..., .init = make_folder, .fini = remove_folder)). */
#ifndef FERRY_TESTS_SCRATCH_H
#define FERRY_TESTS_SCRATCH_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char folder[256];

static void make_folder(void)
{
        strcpy(folder, "/tmp/ferry-unit-XXXXXX");
        cr_assert_not_null(mkdtemp(folder));
}

static void remove_folder(void)
{
        char command[300];

        /* Test scaffolding only: the folder name is ours and has no specials. */
        snprintf(command, sizeof(command), "rm -rf '%s'", folder);
        cr_assert_eq(system(command), 0);
}

#endif
