/* config.h: reading ferry.conf (see config.c and ferry.conf(5)). */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <ferry.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Settings of the [ferry] section. */
struct config {
        int64_t grace_ns;
        bool json;
        char *metrics_file; /* owned; NULL when not set */
};

/* Adds the rules of the file at path to runner and fills config. Returns 0,
 * or -1 with "FILE:LINE: what is wrong" in error. config->metrics_file is
 * replaced, not freed: the caller owns what it held before, and what it holds
 * after (the file's value on success, NULL on failure). */
int config_load(const char *path, struct ferry_runner *runner, struct config *config, char *error, size_t size);

#endif
