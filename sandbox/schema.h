/*
 * schema — the emulator's own reading of Auth0's bulk-import user schema
 * (AUTH0.md, "The users file"), as the import worker applies it per user.
 *
 * Independent of daemon/users on purpose: if both read AUTH0.md the same
 * way the tests agree for the right reason, and a misreading in one shows
 * up as a disagreement.
 *
 * Errors are appended to a json-c array as Auth0 reports them:
 * {"code": "FORMAT", "message": "...", "path": "identities[0].profileData.email"}
 * with codes from AUTH0.md's list and paths in Auth0's internal shape.
 * Duplicates (within a file or against stored users) are not checked here.
 */
#pragma once

#include <json-c/json.h>

/* Checks one element of the users array. Returns the number of errors
 * appended to errors (an array); 0 means the user is acceptable. */
int schema_check_user(json_object *user, json_object *errors);
