/*
 * split — valid users into chunk files under a byte budget.
 *
 * A chunk is "[" e1 "," e2 ... "]" (elements minified, in file order), at
 * most `budget` bytes, written to <dir>/.chunk-%06u.json.tmp (writeback
 * started at once), then, once the next chunk is written (or at
 * split_finish()), fsynced, renamed to <dir>/chunk-%06u.json and announced
 * to on_chunk: the disk flushes one chunk while the next is validated. The
 * directory is fsynced by split_finish(). Every element fits (the caller never passes one over
 * USERS_PROFILE_MAX, and the budget is at least USERS_CHUNK_BUDGET_MIN).
 * Memory: one budget-sized buffer and two chunks' index maps.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct split;

typedef int split_chunk_fn(void *ctx, uint32_t chunk_no, const char *path,
                           uint32_t n_users, const uint32_t *indices, size_t bytes);

int split_new(const char *dir, size_t budget, split_chunk_fn *on_chunk, void *ctx,
              struct split **ret);
/* Removes a half-written temporary file, frees. */
void split_free(struct split *s);

/* Appends one element; writes the current chunk first when it would go
 * over budget. 0, -E2BIG (an element that can never fit), or -errno. */
int split_add(struct split *s, const char *elem, size_t len, uint32_t index);

/* Writes the last chunk (if any) and fsyncs the directory. */
int split_finish(struct split *s);

uint32_t split_chunks(const struct split *s);
uint64_t split_bytes(const struct split *s);

/* Writes `len` bytes to path via a temporary name, fsync and rename (no
 * directory fsync). Shared by the chunk splitter and users_chunk_split(). */
int split_write_file(const char *path, const void *data, size_t len);
/* fsync of a directory. */
int split_sync_dir(const char *dir);
