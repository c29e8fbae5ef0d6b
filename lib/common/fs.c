/* fs.c: which file system a path is on: local, or a network or FUSE one,
 * where the kernel's own change reports see only this machine's writes. */
#include "common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

static const struct {
        unsigned long magic;
        const char *name;
} remote[] = {
        {0x6969, "nfs"},       {0xFF534D42, "cifs"},   {0xFE534D42, "smb2"}, {0x517B, "smb"},
        {0x65735546, "fuse"},  {0x00C36400, "ceph"},   {0x01021997, "9p"},   {0x5346414F, "afs"},
        {0x6B414653, "kafs"},  {0x73757245, "coda"},   {0x564C, "ncp"},      {0x7461636F, "ocfs2"},
        {0x01161970, "gfs2"},  {0x0BD00BD0, "lustre"}, {0x47504653, "gpfs"}, {0x13661366, "orangefs"},
        {0x19830326, "fhgfs"}, {0xAAD7AAEA, "panfs"},
};

/* For FUSE, the subtype from /proc/self/mountinfo ("fuse.sshfs") says more. */
static void fuse_subtype(const char *path, char *name, size_t size)
{
        char line[4096], best[256] = "";
        size_t best_len = 0;
        FILE *f = fopen("/proc/self/mountinfo", "re");

        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char mount_point[2048], type[256];
                const char *dash = strstr(line, " - ");
                size_t len;

                if (!dash || sscanf(line, "%*s %*s %*s %*s %2047s", mount_point) != 1 ||
                    sscanf(dash + 3, "%255s", type) != 1 || strncmp(type, "fuse", 4) != 0)
                        continue;
                len = strlen(mount_point);
                /* The longest mount point that contains path. */
                if (strncmp(path, mount_point, len) == 0 && (path[len] == '/' || path[len] == '\0' || len == 1) &&
                    len >= best_len) {
                        best_len = len;
                        snprintf(best, sizeof(best), "%s", type);
                }
        }
        fclose(f);
        if (best[0])
                snprintf(name, size, "%s", best);
}

bool ferry__fs_is_remote(const char *path, char *name, size_t size)
{
        struct statfs st;

        snprintf(name, size, "local");
        if (statfs(path, &st) < 0)
                return false;
        for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
                if ((unsigned long)st.f_type != remote[i].magic)
                        continue;
                snprintf(name, size, "%s", remote[i].name);
                if (strcmp(remote[i].name, "fuse") == 0) {
                        char real[PATH_MAX];

                        if (realpath(path, real))
                                fuse_subtype(real, name, size);
                }
                return true;
        }
        return false;
}
