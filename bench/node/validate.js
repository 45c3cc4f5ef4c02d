// Node.js + ajv: the same users file, element by element (one user per
// line, as bench/gen_users.py writes it), against the same rules as
// daemon/users: the import schema (types, required email, closed objects,
// lengths, patterns, enums, mfa_factors), per-algorithm hash rules,
// reserved/invalid metadata keys, the 10240-byte profile limit, and
// duplicates of email/user_id/username within the file.
'use strict';
const fs = require('fs');
const readline = require('readline');
const Ajv = require('ajv');

const enc3 = { enum: ['base64', 'hex', 'utf8'] };
const str = { type: 'string' };
const hashSchema = {
  type: 'object', additionalProperties: false, required: ['algorithm', 'hash'],
  properties: {
    algorithm: str,
    hash: {
      type: 'object', additionalProperties: false, required: ['value'],
      properties: {
        value: str, encoding: enc3,
        digest: { enum: ['md4', 'md5', 'ripemd160', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'whirlpool'] },
        key: { type: 'object', additionalProperties: false, required: ['value'], properties: { value: str, encoding: enc3 } },
      },
    },
    salt: { type: 'object', additionalProperties: false, required: ['value'],
            properties: { value: str, encoding: enc3, position: { enum: ['prefix', 'suffix'] } } },
    password: { type: 'object', additionalProperties: false,
                properties: { encoding: { enum: ['ascii', 'utf8', 'utf16le', 'ucs2', 'latin1', 'binary'] } } },
    keylen: { type: 'integer', minimum: 1 },
    cost: { type: 'integer', minimum: 2 },
    blockSize: { type: 'integer', minimum: 1 },
    parallelization: { type: 'integer', minimum: 1 },
  },
};
const schema = {
  type: 'object', additionalProperties: false, required: ['email'],
  properties: {
    email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@.]+(\\.[^\\s@.]+)+$' },
    email_verified: { type: 'boolean' },
    phone_number: { type: 'string', pattern: '^\\+[0-9]{1,15}$' },
    phone_verified: { type: 'boolean' },
    user_id: { type: 'string', minLength: 1, maxLength: 255, pattern: '^\\S+$' },
    username: { type: 'string', minLength: 1, maxLength: 128 },
    given_name: { type: 'string', minLength: 1, maxLength: 150 },
    family_name: { type: 'string', minLength: 1, maxLength: 150 },
    name: { type: 'string', minLength: 1, maxLength: 300 },
    nickname: { type: 'string', minLength: 1, maxLength: 300 },
    picture: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9+.-]*:\\S+$' },
    blocked: { type: 'boolean' },
    password_hash: { type: 'string', pattern: '^\\$2[ab]\\$10\\$[./A-Za-z0-9]{53}$' },
    custom_password_hash: hashSchema,
    app_metadata: { type: 'object', not: { anyOf: [
      '__tenant', '_id', 'blocked', 'clientID', 'created_at', 'email_verified', 'email', 'globalClientID',
      'global_client_id', 'identities', 'lastIP', 'lastLogin', 'loginsCount', 'metadata',
      'multifactor_last_modified', 'multifactor', 'updated_at', 'user_id'].map((k) => ({ required: [k] })) } },
    user_metadata: { type: 'object' },
    mfa_factors: { type: 'array', minItems: 1, maxItems: 10, items: { oneOf: [
      { type: 'object', additionalProperties: false, required: ['totp'], properties: { totp: { type: 'object', additionalProperties: false, required: ['secret'], properties: { secret: { type: 'string', pattern: '^[A-Z2-7]+$' } } } } },
      { type: 'object', additionalProperties: false, required: ['phone'], properties: { phone: { type: 'object', additionalProperties: false, required: ['value'], properties: { value: { type: 'string', pattern: '^\\+[0-9]{1,15}$' } } } } },
      { type: 'object', additionalProperties: false, required: ['email'], properties: { email: { type: 'object', additionalProperties: false, required: ['value'], properties: { value: { type: 'string' } } } } },
    ] } },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const check = ajv.compile(schema);
const B64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const rules = {
  argon2: (h) => /^\$argon2(id|i|d)\$(v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/.=_-]+\$[A-Za-z0-9+/.=_-]+$/.test(h.hash.value) && !h.salt,
  bcrypt: (h) => /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(h.hash.value),
  ldap: (h) => /^\{(S?MD5|S?SHA(256|384|512)?)\}[A-Za-z0-9+/]+={0,2}$/i.test(h.hash.value) && !h.salt,
  pbkdf2: (h) => /^\$pbkdf2-(sha1|sha224|sha256|sha384|sha512|md5)\$(([il]=\d+,?)+\$)?[A-Za-z0-9+/.=_-]+\$[A-Za-z0-9+/.=_-]+$/.test(h.hash.value) && !h.salt,
  hmac: (h) => h.hash.digest && h.hash.key && binary(h),
  scrypt: (h) => h.keylen > 0 && (!h.cost || (h.cost & (h.cost - 1)) === 0) && binary(h),
  md4: binary, md5: binary, sha1: binary, sha256: binary, sha512: binary,
};
function binary(h) {
  const e = h.hash.encoding;
  if (e === 'hex') return HEX.test(h.hash.value);
  if (e === 'base64') return B64.test(h.hash.value);
  return false;
}
function badKeys(o, depth) {
  if (depth > 40 || o === null || typeof o !== 'object') return false;
  if (Array.isArray(o)) return o.some((x) => badKeys(x, depth + 1));
  for (const k of Object.keys(o)) {
    if (k.includes('.') || k.includes('$') || badKeys(o[k], depth + 1)) return true;
  }
  return false;
}

const seen = { email: new Set(), user_id: new Set(), username: new Set() };
let total = 0; let invalid = 0;
const t0 = process.hrtime.bigint();
const rl = readline.createInterface({ input: fs.createReadStream(process.argv[2], { highWaterMark: 1 << 20 }), crlfDelay: Infinity });
rl.on('line', (line) => {
  let s = line.trim();
  if (s === '[' || s === ']' || s === '') return;
  if (s.endsWith(',')) s = s.slice(0, -1);
  const u = JSON.parse(s);
  total++;
  let ok = check(u);
  if (ok && u.custom_password_hash) {
    const r = rules[u.custom_password_hash.algorithm];
    ok = !!r && r(u.custom_password_hash);
  }
  if (ok && (badKeys(u.app_metadata, 0) || badKeys(u.user_metadata, 0))) ok = false;
  if (ok && Buffer.byteLength(s) > 10240) ok = false;
  for (const [k, fold] of [['email', true], ['user_id', false], ['username', true]]) {
    if (typeof u[k] !== 'string') continue;
    const v = fold ? u[k].toLowerCase() : u[k];
    if (seen[k].has(v)) ok = false; else seen[k].add(v);
  }
  if (!ok) invalid++;
});
rl.on('close', () => {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = fs.statSync(process.argv[2]).size;
  console.log(`users=${total} invalid=${invalid} seconds=${secs.toFixed(3)} MB/s=${(bytes / 1e6 / secs).toFixed(1)} users/s=${(total / secs).toFixed(0)}`);
});
