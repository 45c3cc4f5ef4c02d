/* Every rule of the import schema, with valid and invalid examples and the
 * exact diagnostics (pointer, code, message, hint). */
#include "daemon/users/scan.h"
#include "daemon/users/validate.h"
#include "daemon/users/users.h"

#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define BCRYPT_2A "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
#define BCRYPT_2B "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
#define BCRYPT_2Y "$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
#define BCRYPT_12 "$2b$12$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
#define ARGON2 "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
#define PBKDF2 "$pbkdf2-sha512$i=100000,l=64$c2FsdA$aGFzaA"
#define MD5HEX "5f4dcc3b5aa765d61d8327deb882cf99"
#define SHA1HEX "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"
#define SHA256B64 "XohImNooBHFR0OVvjcYpJ3NgPQ1qq73WKhHvch0VQtg="
#define SHA256HEX "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
#define SHA512HEX "b109f3bbbc244eb82441917ed06d618b9008dd09b3befd1b5e07394c706a8bb980b1d7785e5976ec049b46df5f1326af5a2ea6d103fd07c95385ffab0cacbc86"

enum { R = 0, S = 1 };            /* unsupported_hash reject/strip */
enum { U = 0, T = 1, F = 2 };     /* strip_auth0_prefix unset/true/false */

struct row {
	const char *user;
	int hash_policy;
	int prefix_policy;
	const char *expect;   /* "E /path CODE; W /path CODE", "" when valid */
	const char *message;  /* first problem's message, or NULL */
	const char *hint;     /* first problem's hint, or NULL (not checked) */
};

#define E "{\"email\":\"a@example.com\""

static const struct row rows[] = {
	/* required email and its format */
	{ E "}", R, U, "", NULL, NULL },
	{ "{}", R, U, "E /email OBJECT_REQUIRED", "Missing required property: email", NULL },
	{ "{\"email\":\"nope\"}", R, U, "E /email FORMAT", "Object didn't pass validation for format email: nope", "an email address needs an '@'" },
	{ "{\"email\":\"a@b\"}", R, U, "E /email FORMAT", NULL, "an email address needs a dot in the domain (e.g. example.com)" },
	{ "{\"email\":\" a@b.co\"}", R, U, "E /email FORMAT", NULL, "remove the spaces around the address" },
	{ "{\"email\":\"a b@b.co\"}", R, U, "E /email FORMAT", NULL, NULL },
	{ "{\"email\":\"@b.co\"}", R, U, "E /email FORMAT", NULL, NULL },
	{ "{\"email\":\"a@.b.co\"}", R, U, "E /email FORMAT", NULL, NULL },
	{ "{\"email\":\"a@b..co\"}", R, U, "E /email FORMAT", NULL, NULL },
	{ "{\"email\":\"a@b.co.\"}", R, U, "E /email FORMAT", NULL, NULL },
	{ "{\"email\":\"a@@b.co\"}", R, U, "E /email FORMAT", NULL, NULL },
	{ "{\"email\":\"J\\u00f6rg.M+x@Exa-mple.co.uk\"}", R, U, "", NULL, NULL },
	{ "{\"email\":5}", R, U, "E /email INVALID_TYPE", "Expected type string but found type integer", NULL },
	{ "{\"email\":null}", R, U, "E /email INVALID_TYPE", "Expected type string but found type null", NULL },
	/* types */
	{ E ",\"email_verified\":\"true\"}", R, U, "E /email_verified INVALID_TYPE", "Expected type boolean but found type string", NULL },
	{ E ",\"email_verified\":true,\"phone_verified\":false,\"blocked\":false}", R, U, "", NULL, NULL },
	{ E ",\"blocked\":1}", R, U, "E /blocked INVALID_TYPE", NULL, NULL },
	{ E ",\"given_name\":[\"x\"]}", R, U, "E /given_name INVALID_TYPE", "Expected type string but found type array", NULL },
	{ E ",\"app_metadata\":[]}", R, U, "E /app_metadata INVALID_TYPE", NULL, NULL },
	{ E ",\"mfa_factors\":{}}", R, U, "E /mfa_factors INVALID_TYPE", NULL, NULL },
	{ "[1,2]", R, U, "E  INVALID_TYPE", "Expected type object but found type array", NULL },
	{ "\"x\"", R, U, "E  INVALID_TYPE", NULL, NULL },
	/* unknown properties and hints */
	{ E ",\"Email_Verified\":true}", R, U, "E /Email_Verified UNKNOWN_PROPERTY", "Additional properties not allowed: Email_Verified", "did you mean \"email_verified\"?" },
	{ E ",\"emailVerified\":true}", R, U, "E /emailVerified UNKNOWN_PROPERTY", NULL, "did you mean \"email_verified\"?" },
	{ E ",\"Given Name\":\"A\"}", R, U, "E /Given Name UNKNOWN_PROPERTY", NULL, "did you mean \"given_name\"?" },
	{ E ",\"userId\":\"1\"}", R, U, "E /userId UNKNOWN_PROPERTY", NULL, "did you mean \"user_id\"?" },
	{ E ",\"user_metdata\":{}}", R, U, "E /user_metdata UNKNOWN_PROPERTY", NULL, "did you mean \"user_metadata\"?" },
	{ E ",\"usermetadata\":{}}", R, U, "E /usermetadata UNKNOWN_PROPERTY", NULL, "did you mean \"user_metadata\"?" },
	{ E ",\"first_name\":\"A\"}", R, U, "E /first_name UNKNOWN_PROPERTY", NULL, "did you mean \"given_name\"?" },
	{ E ",\"zzzzzz\":1}", R, U, "E /zzzzzz UNKNOWN_PROPERTY", "Additional properties not allowed: zzzzzz", NULL },
	{ E ",\"a/b~c\":1}", R, U, "E /a~1b~0c UNKNOWN_PROPERTY", NULL, NULL },
	/* phone */
	{ E ",\"phone_number\":\"+14155550100\"}", R, U, "", NULL, NULL },
	{ E ",\"phone_number\":\"4155550100\"}", R, U, "E /phone_number PATTERN", "String does not match pattern ^\\+[0-9]{1,15}$: 4155550100", "E.164 starts with '+' and the country code (e.g. +14155550100)" },
	{ E ",\"phone_number\":\"+1 415 555\"}", R, U, "E /phone_number PATTERN", NULL, NULL },
	{ E ",\"phone_number\":\"+1234567890123456\"}", R, U, "E /phone_number PATTERN", NULL, NULL },
	{ E ",\"phone_number\":\"+\"}", R, U, "E /phone_number PATTERN", NULL, NULL },
	/* lengths */
	{ E ",\"given_name\":\"\"}", R, U, "E /given_name MIN_LENGTH", "String is too short (0 chars), minimum 1", NULL },
	{ E ",\"nickname\":\"\"}", R, U, "E /nickname MIN_LENGTH", NULL, NULL },
	{ E ",\"username\":\"bob\"}", R, U, "", NULL, NULL },
	{ E ",\"username\":\"abcdefghijklmnop\"}", R, U, "W /username MAX_LENGTH", "String is longer than 15 chars (16): the recorded database connection allows 1 to 15", NULL },
	{ E ",\"username\":\"\"}", R, U, "E /username MIN_LENGTH", NULL, NULL },
	{ E ",\"user_id\":\"\"}", R, U, "E /user_id MIN_LENGTH", NULL, NULL },
	{ E ",\"user_id\":\"a b\"}", R, U, "E /user_id PATTERN", "user_id must not contain whitespace: a b", NULL },
	{ E ",\"user_id\":\"x\\ty\"}", R, U, "E /user_id PATTERN", NULL, NULL },
	/* picture */
	{ E ",\"picture\":\"https://example.com/a.png\"}", R, U, "", NULL, NULL },
	{ E ",\"picture\":\"example.com/a.png\"}", R, U, "E /picture FORMAT", "Object didn't pass validation for format uri: example.com/a.png", NULL },
	{ E ",\"picture\":\"http://a b\"}", R, U, "E /picture FORMAT", NULL, NULL },
	/* auth0| prefix policies */
	{ E ",\"user_id\":\"auth0|abc\"}", R, U, "E /user_id AUTH0_PREFIX", "user_id starts with 'auth0|', which Auth0 adds itself (it would become auth0|auth0|...): auth0|abc", "set strip_auth0_prefix=true to import it as the id after 'auth0|', or strip_auth0_prefix=false to keep it as is" },
	{ E ",\"user_id\":\"auth0|abc\"}", R, T, "", NULL, NULL },
	{ E ",\"user_id\":\"auth0|abc\"}", R, F, "", NULL, NULL },
	{ E ",\"user_id\":\"auth0|\"}", R, T, "E /user_id MIN_LENGTH", "user_id is empty once 'auth0|' is stripped", NULL },
	{ E ",\"user_id\":\"google-oauth2|1\"}", R, U, "", NULL, NULL },
	/* password_hash */
	{ E ",\"password_hash\":\"" BCRYPT_2A "\"}", R, U, "", NULL, NULL },
	{ E ",\"password_hash\":\"" BCRYPT_2B "\"}", R, U, "", NULL, NULL },
	{ E ",\"password_hash\":\"" BCRYPT_2Y "\"}", R, U, "E /password_hash PATTERN", "password_hash takes $2a$ or $2b$ bcrypt hashes; $2y$ is accepted only in custom_password_hash", "move it to custom_password_hash: {\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"$2y$...\"}}" },
	{ E ",\"password_hash\":\"" BCRYPT_12 "\"}", R, U, "E /password_hash PATTERN", "password_hash has bcrypt cost 12; Auth0 accepts 10 here", NULL },
	{ E ",\"password_hash\":\"$2b$10$short\"}", R, U, "E /password_hash PATTERN", "password_hash is not a valid bcrypt hash", NULL },
	{ E ",\"password_hash\":\"" ARGON2 "\"}", R, U, "E /password_hash PATTERN", NULL, "move it to custom_password_hash with algorithm argon2" },
	{ E ",\"password_hash\":\"$6$salt$abc\"}", R, U, "E /password_hash UNSUPPORTED_HASH", "password_hash is not a bcrypt $2a$ or $2b$ hash", NULL },
	{ E ",\"password_hash\":\"$6$salt$abc\"}", S, U, "W /password_hash UNSUPPORTED_HASH", "the password hash uses an unsupported algorithm and was removed: the user is imported without a password", "the user must reset the password at first login" },
	{ E ",\"password_hash\":\"" BCRYPT_2B "\",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"}}}", R, U,
	  "E /custom_password_hash NOT_PASSED", "password_hash and custom_password_hash cannot be used together", NULL },
	/* custom_password_hash structure */
	{ E ",\"custom_password_hash\":{}}", R, U, "E /custom_password_hash/algorithm OBJECT_REQUIRED; E /custom_password_hash/hash OBJECT_REQUIRED", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/hash/value OBJECT_REQUIRED", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"},\"Salt\":{}}}", R, U, "E /custom_password_hash/Salt UNKNOWN_PROPERTY", NULL, "did you mean \"salt\"?" },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\",\"salt\":\"x\"}}}", R, U, "E /custom_password_hash/hash/salt UNKNOWN_PROPERTY", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"SHA256\",\"hash\":{\"value\":\"" SHA256HEX "\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/algorithm ENUM_MISMATCH", "No enum match for: SHA256", "did you mean \"sha256\"? (one of argon2, bcrypt, hmac, ldap, md4, md5, sha1, sha256, sha512, pbkdf2, scrypt)" },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"crypt\",\"hash\":{\"value\":\"x\"}}}", R, U, "E /custom_password_hash/algorithm UNSUPPORTED_HASH", "Unsupported hash algorithm: crypt", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"crypt\",\"hash\":{\"value\":\"x\"}}}", S, U, "W /custom_password_hash UNSUPPORTED_HASH", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"latin1\"}}}", R, U, "E /custom_password_hash/hash/encoding ENUM_MISMATCH", "No enum match for: latin1", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\",\"digest\":\"sha3\"}}}", R, U, "E /custom_password_hash/hash/digest ENUM_MISMATCH", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"},\"password\":{\"encoding\":\"utf16\"}}}", R, U, "E /custom_password_hash/password/encoding ENUM_MISMATCH", NULL, "did you mean \"utf16le\"? (one of ascii, utf8, utf16le, ucs2, latin1, binary)" },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"},\"salt\":{\"value\":\"abc\",\"position\":\"middle\"}}}", R, U, "E /custom_password_hash/salt/position ENUM_MISMATCH", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":5,\"hash\":{\"value\":\"x\"}}}", R, U, "E /custom_password_hash/algorithm INVALID_TYPE", NULL, NULL },
	/* argon2 */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"" ARGON2 "\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"" ARGON2 "\",\"encoding\":\"utf8\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"$argon2i$m=4096,t=3,p=1$c2FsdA$aGFzaA\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"" ARGON2 "\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/hash/encoding ENUM_MISMATCH", "hash.encoding must be utf8 for argon2 (found hex)", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"" ARGON2 "\"},\"salt\":{\"value\":\"x\"}}}", R, U, "E /custom_password_hash/salt NOT_PASSED", "argon2 takes no separate salt", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"$argon2x$v=19$m=1,t=1,p=1$a$b\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value is not an argon2 PHC string", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"argon2\",\"hash\":{\"value\":\"$argon2id$v=19$m=1,t=1$a$b\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", NULL, NULL },
	/* bcrypt */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"" BCRYPT_2Y "\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"" BCRYPT_12 "\",\"encoding\":\"utf8\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"$2x$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\"}}}", R, U, "E /custom_password_hash/hash/value UNSUPPORTED_HASH", "bcrypt variant $2x$ is not supported", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"$2$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\"}}}", S, U, "W /custom_password_hash UNSUPPORTED_HASH", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"notbcrypt\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value is not a bcrypt hash", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"" BCRYPT_2B "\",\"encoding\":\"base64\"}}}", R, U, "E /custom_password_hash/hash/encoding ENUM_MISMATCH", NULL, NULL },
	/* hmac */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"" SHA256HEX "\",\"encoding\":\"hex\",\"digest\":\"sha256\",\"key\":{\"value\":\"secret\"}}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"" SHA256B64 "\",\"encoding\":\"base64\",\"digest\":\"sha256\",\"key\":{\"value\":\"c2VjcmV0\",\"encoding\":\"base64\"}}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"" SHA256HEX "\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/hash/digest OBJECT_REQUIRED; E /custom_password_hash/hash/key OBJECT_REQUIRED", "Missing required property: digest (required for hmac)", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"" SHA256HEX "\",\"digest\":\"sha256\",\"key\":{\"value\":\"k\"}}}}", R, U, "E /custom_password_hash/hash/encoding OBJECT_REQUIRED", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"" SHA256HEX "\",\"encoding\":\"hex\",\"digest\":\"sha256\",\"key\":{}}}}", R, U, "E /custom_password_hash/hash/key/value OBJECT_REQUIRED", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\",\"digest\":\"sha256\",\"key\":{\"value\":\"k\"}}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value decodes to 16 bytes; the digest is 32 bytes", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"hmac\",\"hash\":{\"value\":\"x\",\"encoding\":\"utf8\",\"digest\":\"sha256\",\"key\":{\"value\":\"k\"}}}}", R, U, "E /custom_password_hash/hash/encoding ENUM_MISMATCH", "hash.encoding must be hex or base64 for hmac (found utf8)", NULL },
	/* ldap */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"{SSHA}MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"{sha512}MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=\",\"encoding\":\"utf8\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"{CRYPT}$1$abc\"}}}", R, U, "E /custom_password_hash/hash/value UNSUPPORTED_HASH", "LDAP scheme {CRYPT} is not supported", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"{CRYPT}$1$abc\"}}}", S, U, "W /custom_password_hash UNSUPPORTED_HASH", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"SSHA:abc\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value is not an RFC 2307 LDAP value", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"{SSHA}not base64!\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"ldap\",\"hash\":{\"value\":\"{SSHA}MTIz\"},\"salt\":{\"value\":\"x\"}}}", R, U, "E /custom_password_hash/salt NOT_PASSED", NULL, NULL },
	/* md4, md5, sha1, sha256, sha512 */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md4\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"},\"salt\":{\"value\":\"abc\",\"position\":\"suffix\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"" MD5HEX "\"}}}", R, U, "E /custom_password_hash/hash/encoding OBJECT_REQUIRED", "Missing required property: encoding (required for md5)", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"zz\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value is not hex", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha1\",\"hash\":{\"value\":\"" SHA1HEX "\",\"encoding\":\"hex\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha1\",\"hash\":{\"value\":\"" MD5HEX "\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value decodes to 16 bytes; the digest is 20 bytes", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha256\",\"hash\":{\"value\":\"" SHA256B64 "\",\"encoding\":\"base64\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha256\",\"hash\":{\"value\":\"not base64!\",\"encoding\":\"base64\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value is not base64", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha256\",\"hash\":{\"value\":\"" SHA256HEX "\",\"encoding\":\"utf8\"}}}", R, U, "E /custom_password_hash/hash/encoding ENUM_MISMATCH", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha512\",\"hash\":{\"value\":\"" SHA512HEX "\",\"encoding\":\"hex\"},\"salt\":{\"value\":\"73616c74\",\"encoding\":\"hex\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"sha512\",\"hash\":{\"value\":\"" SHA512HEX "\",\"encoding\":\"hex\"},\"salt\":{\"value\":\"xyz\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/salt/value FORMAT", "salt.value is not hex", NULL },
	/* pbkdf2 */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\",\"hash\":{\"value\":\"" PBKDF2 "\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\",\"hash\":{\"value\":\"$pbkdf2-sha256$c2FsdA$aGFzaA\",\"encoding\":\"utf8\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\",\"hash\":{\"value\":\"$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA\"}}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\",\"hash\":{\"value\":\"$pbkdf2-sha999$i=1$c2FsdA$aGFzaA\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", "hash.value is not a pbkdf2 PHC string", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\",\"hash\":{\"value\":\"$pbkdf2-sha256$x=1$c2FsdA$aGFzaA\"}}}", R, U, "E /custom_password_hash/hash/value FORMAT", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\",\"hash\":{\"value\":\"" PBKDF2 "\"},\"salt\":{\"value\":\"s\"}}}", R, U, "E /custom_password_hash/salt NOT_PASSED", NULL, NULL },
	/* scrypt */
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"salt\":{\"value\":\"73616c74\",\"encoding\":\"hex\"},\"keylen\":64,\"cost\":16384,\"blockSize\":8,\"parallelization\":1}}", R, U, "", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"}}}", R, U, "E /custom_password_hash/keylen OBJECT_REQUIRED", "Missing required property: keylen (required for scrypt)", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":0}}", R, U, "E /custom_password_hash/keylen NOT_PASSED", "Value must be greater than 0 (found 0)", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":\"64\"}}", R, U, "E /custom_password_hash/keylen INVALID_TYPE", "Expected type integer but found type string", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":64,\"cost\":1000}}", R, U, "E /custom_password_hash/cost NOT_PASSED", "cost must be a power of two greater than 1 (found 1000)", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":64,\"cost\":1}}", R, U, "E /custom_password_hash/cost NOT_PASSED", NULL, NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":64,\"cost\":16384.5}}", R, U, "E /custom_password_hash/cost INVALID_TYPE", "Expected type integer but found type number", NULL },
	{ E ",\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":64,\"blockSize\":-1}}", R, U, "E /custom_password_hash/blockSize NOT_PASSED", NULL, NULL },
	/* mfa_factors */
	{ E ",\"mfa_factors\":[{\"totp\":{\"secret\":\"JBSWY3DPEHPK3PXP\"}},{\"phone\":{\"value\":\"+14155550100\"}},{\"email\":{\"value\":\"b@example.com\"}}]}", R, U, "", NULL, NULL },
	{ E ",\"mfa_factors\":[]}", R, U, "E /mfa_factors ARRAY_LENGTH_SHORT", "Array is too short (0), minimum 1", NULL },
	{ E ",\"mfa_factors\":[{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}},{\"totp\":{\"secret\":\"A\"}}]}", R, U, "E /mfa_factors ARRAY_LENGTH_LONG", "Array is too long (11), maximum 10", NULL },
	{ E ",\"mfa_factors\":[{\"totp\":{\"secret\":\"jbswy3dp\"}}]}", R, U, "E /mfa_factors/0/totp/secret PATTERN", "String does not match pattern ^[A-Z2-7]+$", "base32 secrets are upper case" },
	{ E ",\"mfa_factors\":[{\"totp\":{\"secret\":\"JBSWY3DP====\"}}]}", R, U, "E /mfa_factors/0/totp/secret PATTERN", NULL, "remove the '=' padding" },
	{ E ",\"mfa_factors\":[{\"phone\":{\"value\":\"555\"}}]}", R, U, "E /mfa_factors/0/phone/value PATTERN", NULL, NULL },
	{ E ",\"mfa_factors\":[{\"email\":{\"value\":\"x\"}}]}", R, U, "E /mfa_factors/0/email/value FORMAT", NULL, NULL },
	{ E ",\"mfa_factors\":[{}]}", R, U, "E /mfa_factors/0 NOT_PASSED", "Data does not match exactly one of totp, phone, email (found 0)", NULL },
	{ E ",\"mfa_factors\":[{\"totp\":{\"secret\":\"AB\"},\"phone\":{\"value\":\"+1\"}}]}", R, U, "E /mfa_factors/0 NOT_PASSED", "Data does not match exactly one of totp, phone, email (found 2)", NULL },
	{ E ",\"mfa_factors\":[{\"sms\":{\"value\":\"+1\"}}]}", R, U, "E /mfa_factors/0/sms UNKNOWN_PROPERTY", NULL, NULL },
	{ E ",\"mfa_factors\":[{\"totp\":{\"secret\":\"AB\",\"issuer\":\"x\"}}]}", R, U, "E /mfa_factors/0/totp/issuer UNKNOWN_PROPERTY", NULL, NULL },
	{ E ",\"mfa_factors\":[\"totp\"]}", R, U, "E /mfa_factors/0 INVALID_TYPE", NULL, NULL },
	/* metadata */
	{ E ",\"app_metadata\":{\"plan\":\"gold\",\"roles\":[\"a\"]},\"user_metadata\":{\"theme\":{\"dark\":true}}}", R, U, "", NULL, NULL },
	{ E ",\"app_metadata\":{\"clientID\":\"x\"}}", R, U, "E /app_metadata/clientID NOT_PASSED", "app_metadata.clientID is reserved by Auth0", "rename it, or move it to user_metadata" },
	{ E ",\"app_metadata\":{\"blocked\":true,\"__tenant\":1}}", R, U, "E /app_metadata/blocked NOT_PASSED; E /app_metadata/__tenant NOT_PASSED", NULL, NULL },
	{ E ",\"user_metadata\":{\"blocked\":true}}", R, U, "", NULL, NULL },
	{ E ",\"user_metadata\":{\"a.b\":1}}", R, U, "E /user_metadata/a.b PATTERN", "Property names in user_metadata must not contain '.' or '$': a.b", "rename it, e.g. \"a_b\"" },
	{ E ",\"user_metadata\":{\"x\":{\"$set\":1}}}", R, U, "E /user_metadata/x/$set PATTERN", NULL, NULL },
	{ E ",\"app_metadata\":{\"x\":[{\"a$\":1}]}}", R, U, "E /app_metadata/x/0/a$ PATTERN", NULL, NULL },
	{ E ",\"user_metadata\":{\"v\":\"a.b$c\"}}", R, U, "", NULL, NULL },
	/* several at once, errors before warnings */
	{ "{\"email\":\"x\",\"username\":\"abcdefghijklmnopq\",\"blocked\":\"no\"}", R, U, "E /email FORMAT; E /blocked INVALID_TYPE; W /username MAX_LENGTH", NULL, NULL },
};

/* The scanner's minified bytes, parsed into doc (as users_process does). */
static bool parse_user(struct ujv_doc *doc, char *buf, const char *text)
{
	struct scan sc = { .out = buf, .out_cap = 65536, .max_depth = USERS_DEPTH_MAX };
	if (scan_element(&sc, text, strlen(text), 1) != SCAN_DONE || sc.end != strlen(text))
		return false;
	buf[sc.out_len] = '\0';
	return ujv_parse(doc, buf, sc.out_len) == 0;
}

static void canon(const struct validate *v, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < v->n; i++) {
		int n = snprintf(buf + o, size - o, "%s%c %s %s", i ? "; " : "",
		                 v->problems[i].warning ? 'W' : 'E', v->problems[i].path,
		                 v->problems[i].code);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
}

static void test_rules(void **state)
{
	struct validate *v = malloc(sizeof(*v));
	char got[2048];
	char *buf = malloc(65536);
	struct ujv_doc doc;
	ujv_doc_init(&doc);

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct users_options o;
		users_options_init(&o);
		o.unsupported_hash = r->hash_policy == S ? USERS_UNSUPPORTED_HASH_STRIP : USERS_UNSUPPORTED_HASH_REJECT;
		o.strip_auth0_prefix = r->prefix_policy == T ? USERS_AUTH0_PREFIX_STRIP :
		                       r->prefix_policy == F ? USERS_AUTH0_PREFIX_KEEP : USERS_AUTH0_PREFIX_UNSET;
		if (!parse_user(&doc, buf, r->user))
			fail_msg("row %zu does not parse: %s", i, r->user);
		validate_user(v, &doc, &o);
		validate_finish(v);
		canon(v, got, sizeof(got));
		if (strcmp(got, r->expect) != 0)
			fail_msg("row %zu %s\n  expected [%s]\n  got      [%s]", i, r->user, r->expect, got);
		if (r->message && strcmp(v->problems[0].message, r->message) != 0)
			fail_msg("row %zu message\n  expected [%s]\n  got      [%s]", i, r->message, v->problems[0].message);
		if (r->hint && (!v->problems[0].hint || strcmp(v->problems[0].hint, r->hint) != 0))
			fail_msg("row %zu hint\n  expected [%s]\n  got      [%s]", i, r->hint,
			         v->problems[0].hint ? v->problems[0].hint : "(none)");
	}
	ujv_doc_done(&doc);
	free(buf);
	free(v);
	(void)state;
}

static void test_policies_facts(void **state)
{
	struct validate *v = malloc(sizeof(*v));
	struct users_options o;
	users_options_init(&o);
	o.strip_auth0_prefix = USERS_AUTH0_PREFIX_STRIP;
	o.unsupported_hash = USERS_UNSUPPORTED_HASH_STRIP;
	char buf[512];
	struct ujv_doc doc;
	ujv_doc_init(&doc);
	assert_true(parse_user(&doc, buf,
		"{\"email\":\"A@x.co\",\"user_id\":\"auth0|42\",\"username\":\"Bob\",\"password_hash\":\"$1$x\"}"));
	validate_user(v, &doc, &o);
	validate_finish(v);
	assert_true(v->strip_prefix);
	assert_string_equal(v->user_id, "42");
	assert_string_equal(v->email, "A@x.co");
	assert_string_equal(v->username, "Bob");
	assert_string_equal(v->strip_key, "password_hash");
	assert_int_equal(v->n_errors, 0);
	assert_int_equal(v->n_warnings, 1);
	ujv_doc_done(&doc);
	free(v);
	(void)state;
}

static void test_many_problems_bounded(void **state)
{
	/* 500 unknown properties: at most VALIDATE_PROBLEMS_MAX kept. */
	char *s = malloc(500 * 16 + 64);
	size_t o = (size_t)sprintf(s, "{\"email\":\"a@b.co\"");
	for (int i = 0; i < 500; i++)
		o += (size_t)sprintf(s + o, ",\"k%d\":1", i);
	sprintf(s + o, "}");
	struct validate *v = malloc(sizeof(*v));
	struct users_options opt;
	users_options_init(&opt);
	char *buf = malloc(65536);
	struct ujv_doc doc;
	ujv_doc_init(&doc);
	assert_true(parse_user(&doc, buf, s));
	validate_user(v, &doc, &opt);
	validate_finish(v);
	assert_int_equal(v->n, VALIDATE_PROBLEMS_MAX);
	assert_true(v->dropped > 0);
	ujv_doc_done(&doc);
	free(buf);
	free(v);
	free(s);
	(void)state;
}

/* Through users_process: index, duplicates, profile size, summary. */
struct collected {
	char text[8192];
	size_t len;
};

static int on_problems(void *ctx, uint32_t index, uint32_t line, const char *email,
                       const char *user_id, const struct users_problem *p, size_t n,
                       bool warnings_only)
{
	struct collected *c = ctx;
	for (size_t i = 0; i < n; i++)
		c->len += (size_t)snprintf(c->text + c->len, sizeof(c->text) - c->len,
		                           "%u:%u %c %s %s %s|", index, line, p[i].warning ? 'W' : 'E',
		                           p[i].path, p[i].code, p[i].message);
	(void)email; (void)user_id; (void)warnings_only;
	return 0;
}

static void write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void test_process_duplicates_and_profile(void **state)
{
	char dir[] = "/tmp/users-validate-XXXXXX";
	char path[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/u.json", dir);
	char *big = malloc(12000);
	memset(big, 'x', 10300);
	big[10300] = '\0';
	char *file = malloc(20000);
	snprintf(file, 20000,
	         "[\n{\"email\":\"Ann@x.co\",\"user_id\":\"1\",\"username\":\"ann\"},\n"
	         "{\"email\":\"ann@X.co\"},\n"
	         "{\"email\":\"b@x.co\",\"user_id\":\"1\"},\n"
	         "{\"email\":\"c@x.co\",\"user_id\":\"1A\",\"username\":\"ANN\"},\n"
	         "{\"email\":\"d@x.co\",\"user_id\":\"1a\"},\n"
	         "{\"email\":\"e@x.co\",\"user_metadata\":{\"n\":\"%s\"}}\n]", big);
	write_file(path, file);
	struct users_options o;
	users_options_init(&o);
	struct collected c = { .len = 0 };
	struct users_sink sink = { .on_problems = on_problems };
	struct users_summary sum;
	struct users_failure f;
	assert_int_equal(users_process(path, &o, NULL, &sink, &c, &sum, &f), 0);
	assert_string_equal(c.text,
		"1:3 E /email DUPLICATED_USER A user with this email was already provided|"
		"2:4 E /user_id DUPLICATED_USER A user with this user_id was already provided|"
		"3:5 E /username DUPLICATED_USER A user with this username was already provided|"
		"5:7 E  PROFILE_SIZE_EXCEEDED The user profile is 10343 bytes (minified UTF-8); at most 10240|");
	assert_int_equal(sum.users_total, 6);
	assert_int_equal(sum.users_valid, 2);
	assert_int_equal(sum.users_invalid, 4);
	assert_int_equal(sum.format, USERS_FORMAT_JSON_ARRAY);
	unlink(path);
	rmdir(dir);
	free(big);
	free(file);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_policies_facts),
		cmocka_unit_test(test_many_problems_bounded),
		cmocka_unit_test(test_process_duplicates_and_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
