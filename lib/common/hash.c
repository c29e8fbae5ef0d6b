/* hash.c: the intrusive chained hash table behind the watcher's lookups.
 *
 * Items embed a struct ferry__hash_node, so a lookup table costs one pointer
 * per bucket and nothing per item beyond the embedded node. The table doubles
 * when it holds more items than buckets.
 */
#include "common.h"

#include <errno.h>
#include <stdlib.h>

static size_t bucket_of(const struct ferry__hash *h, uint32_t hash)
{
        return hash & (h->bucket_count - 1);
}

static int grow(struct ferry__hash *h)
{
        size_t new_count = h->bucket_count ? h->bucket_count * 2 : 64;
        struct ferry__hash_node **buckets = calloc(new_count, sizeof(*buckets));

        if (!buckets)
                return -ENOMEM;
        for (size_t i = 0; i < h->bucket_count; i++) {
                struct ferry__hash_node *node = h->buckets[i];

                while (node) {
                        struct ferry__hash_node *next = node->next;
                        size_t b = node->hash & (new_count - 1);

                        node->next = buckets[b];
                        buckets[b] = node;
                        node = next;
                }
        }
        free(h->buckets);
        h->buckets = buckets;
        h->bucket_count = new_count;
        return 0;
}

int ferry__hash_insert(struct ferry__hash *h, struct ferry__hash_node *node, uint32_t hash)
{
        if (h->count >= h->bucket_count) {
                int r = grow(h);

                /* A full table still works, only slower: fail only when empty. */
                if (r < 0 && h->bucket_count == 0)
                        return r;
        }
        node->hash = hash;
        node->next = h->buckets[bucket_of(h, hash)];
        h->buckets[bucket_of(h, hash)] = node;
        h->count++;
        return 0;
}

void ferry__hash_remove(struct ferry__hash *h, struct ferry__hash_node *node)
{
        struct ferry__hash_node **link = &h->buckets[bucket_of(h, node->hash)];

        while (*link && *link != node)
                link = &(*link)->next;
        if (*link) {
                *link = node->next;
                h->count--;
        }
        node->next = NULL;
}

struct ferry__hash_node *ferry__hash_chain(const struct ferry__hash *h, uint32_t hash)
{
        return h->bucket_count ? h->buckets[bucket_of(h, hash)] : NULL;
}

void ferry__hash_done(struct ferry__hash *h)
{
        free(h->buckets);
        *h = (struct ferry__hash){0};
}

/* FNV-1a over the bytes, mixed with a per-watcher seed so that crafted names
 * cannot predictably pile into one bucket. */
uint32_t ferry__hash_bytes(const void *data, size_t size, uint64_t seed)
{
        const unsigned char *p = data;
        uint64_t h = UINT64_C(14695981039346656037) ^ seed;

        for (size_t i = 0; i < size; i++) {
                h ^= p[i];
                h *= UINT64_C(1099511628211);
        }
        h ^= h >> 29;
        return (uint32_t)(h ^ (h >> 32));
}
