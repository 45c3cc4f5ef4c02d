/*
 * hint — "did you mean": the property a user most likely meant when a name
 * is not in the schema.
 *
 * Names are compared after folding case and dropping '_', '-', ' ' and '.'
 * (so `Email_Verified`, `emailVerified`, `Given Name`, `userId` match), then
 * by edit distance (Damerau-Levenshtein: insert, delete, substitute,
 * transpose) on the folded names, at most 1 for names up to 4 characters, 2
 * up to 10, 3 beyond; then through a few known aliases (`id` → `user_id`,
 * `first_name` → `given_name`, `phone` → `phone_number`, ...).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The candidate meant by `name`, or NULL. `candidates` has n entries. */
const char *hint_property(const char *name, const char *const *candidates, size_t n);

/* Damerau-Levenshtein (optimal string alignment) distance of two strings of
 * at most 64 bytes each; larger inputs give SIZE_MAX. */
size_t hint_distance(const char *a, const char *b);

/* Equal once case is folded and '_', '-', ' ', '.' are dropped. */
bool hint_folded_equal(const char *a, const char *b);
