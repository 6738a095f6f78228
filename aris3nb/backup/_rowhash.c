/*
 * aris3nb row hash: an SQLite loadable extension the sqlite3 shell loads to digest rows.
 *
 *   aris3nb_row_sha256(v1, ..., vn) -> BLOB: the first 16 bytes of SHA-256 (OpenSSL's) of the
 *   row's canonical encoding: for each value in order, one type byte then its bytes --
 *     'N'                          NULL
 *     'I' + 8 bytes big-endian     INTEGER (two's complement)
 *     'F' + 8 bytes big-endian     REAL (IEEE 754 binary64)
 *     'T' + u32 BE length + bytes  TEXT (as stored: UTF-8)
 *     'B' + u32 BE length + bytes  BLOB
 *
 *   aris3nb_row_sha256_hex(d) -> TEXT, an aggregate of row digests (16-byte BLOBs, as
 *   aris3nb_row_sha256 returns them) in the order the rows come, written as one upper-case
 *   hex text: what hex(group_concat(d, '')) gives, '' for no rows, without building the
 *   concatenation and then copying it into its hex (a chunk's digests in one block).
 *
 *   aris3nb_integer_keys(k) -> TEXT, an aggregate of integer keys in ascending order: what
 *   min(k) || ':' || CASE WHEN max(k) - min(k) + 1 = count(*) THEN '' ELSE group_concat(k) END
 *   gives (NULL for no rows), without writing the list when the keys are consecutive.
 *
 * aris3nb/backup/rowhash.py computes the same digest in Python (docs/FORMAT.md section 5).
 * It replaces sha3(json_array(...)), whose JSON text cost about 2 microseconds a row.
 * SHA-256 is OpenSSL's one-context API (SHA256_Init/Update/Final): the same function as
 * EVP's, without the provider dispatch EVP pays on every call (once a row).
 * Built by setuptools as an optional extension; never imported by Python.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

/* SHA256_Init and friends are deprecated in OpenSSL 3 (still built, and what EVP's SHA-256 runs). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#define ROW_DIGEST_BYTES 16

/* The encoding buffer, shared by every call on one connection (SQLite calls one at a time). */
typedef struct {
  unsigned char *buffer;
  size_t size;
} RowHash;

static void row_hash_free(void *p) {
  RowHash *state = (RowHash *)p;
  if (state == NULL) return;
  sqlite3_free(state->buffer);
  sqlite3_free(state);
}

static int reserve(RowHash *state, size_t needed) {
  if (needed <= state->size) return 1;
  size_t size = state->size ? state->size : 256;
  while (size < needed) size *= 2;
  unsigned char *grown = sqlite3_realloc64(state->buffer, size);
  if (grown == NULL) return 0;
  state->buffer = grown;
  state->size = size;
  return 1;
}

static void put_u64(unsigned char *at, uint64_t value) {
  for (int i = 7; i >= 0; i--) {
    at[i] = (unsigned char)(value & 0xff);
    value >>= 8;
  }
}

static void put_u32(unsigned char *at, uint32_t value) {
  at[0] = (unsigned char)(value >> 24);
  at[1] = (unsigned char)(value >> 16);
  at[2] = (unsigned char)(value >> 8);
  at[3] = (unsigned char)value;
}

/* The row's digest into digest[ROW_DIGEST_BYTES]; SQLITE_OK, SQLITE_NOMEM or SQLITE_ERROR. */
static int digest_row(RowHash *state, int argc, sqlite3_value **argv, unsigned char *digest) {
  size_t used = 0;
  for (int n = 0; n < argc; n++) {
    sqlite3_value *value = argv[n];
    int type = sqlite3_value_type(value);
    if (type == SQLITE_NULL) {
      if (!reserve(state, used + 1)) return SQLITE_NOMEM;
      state->buffer[used++] = 'N';
    } else if (type == SQLITE_INTEGER) {
      if (!reserve(state, used + 9)) return SQLITE_NOMEM;
      state->buffer[used] = 'I';
      put_u64(state->buffer + used + 1, (uint64_t)sqlite3_value_int64(value));
      used += 9;
    } else if (type == SQLITE_FLOAT) {
      double real = sqlite3_value_double(value);
      uint64_t bits;
      memcpy(&bits, &real, sizeof bits);
      if (!reserve(state, used + 9)) return SQLITE_NOMEM;
      state->buffer[used] = 'F';
      put_u64(state->buffer + used + 1, bits);
      used += 9;
    } else {
      const unsigned char *bytes;
      int length;
      unsigned char tag;
      if (type == SQLITE_TEXT) {
        bytes = sqlite3_value_text(value);
        tag = 'T';
      } else {
        bytes = sqlite3_value_blob(value);
        tag = 'B';
      }
      length = sqlite3_value_bytes(value);
      if (bytes == NULL && length > 0) return SQLITE_NOMEM;
      if (!reserve(state, used + 5 + (size_t)length)) return SQLITE_NOMEM;
      state->buffer[used] = tag;
      put_u32(state->buffer + used + 1, (uint32_t)length);
      if (length > 0) memcpy(state->buffer + used + 5, bytes, (size_t)length);
      used += 5 + (size_t)length;
    }
  }
  unsigned char full[SHA256_DIGEST_LENGTH];
  SHA256_CTX sha;
  if (!SHA256_Init(&sha) || !SHA256_Update(&sha, state->buffer, used) || !SHA256_Final(full, &sha)) {
    return SQLITE_ERROR;
  }
  memcpy(digest, full, ROW_DIGEST_BYTES);
  return SQLITE_OK;
}

static void row_sha256(sqlite3_context *context, int argc, sqlite3_value **argv) {
  unsigned char digest[ROW_DIGEST_BYTES];
  int rc = digest_row((RowHash *)sqlite3_user_data(context), argc, argv, digest);
  if (rc == SQLITE_NOMEM) {
    sqlite3_result_error_nomem(context);
  } else if (rc != SQLITE_OK) {
    sqlite3_result_error(context, "aris3nb_row_sha256: OpenSSL SHA-256 failed", -1);
  } else {
    sqlite3_result_blob(context, digest, ROW_DIGEST_BYTES, SQLITE_TRANSIENT);
  }
}

/* The aggregate's state: the hex text so far (2 * ROW_DIGEST_BYTES characters a row). */
typedef struct {
  char *text;
  size_t used;
  size_t size;
  int failed;
} HexDigests;

static void row_sha256_hex_step(sqlite3_context *context, int argc, sqlite3_value **argv) {
  static const char HEX[] = "0123456789ABCDEF";
  HexDigests *hex = (HexDigests *)sqlite3_aggregate_context(context, sizeof(HexDigests));
  if (hex == NULL) {
    sqlite3_result_error_nomem(context);
    return;
  }
  if (hex->failed) return;
  const void *digest = sqlite3_value_blob(argv[0]);
  int rc = SQLITE_OK;
  if (argc != 1 || sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != ROW_DIGEST_BYTES ||
      digest == NULL) {
    rc = SQLITE_MISMATCH;
  }
  if (rc == SQLITE_OK && hex->used + 2 * ROW_DIGEST_BYTES > hex->size) {
    size_t size = hex->size ? hex->size * 2 : 4096;
    char *grown = sqlite3_realloc64(hex->text, size);
    if (grown == NULL) {
      rc = SQLITE_NOMEM;
    } else {
      hex->text = grown;
      hex->size = size;
    }
  }
  if (rc != SQLITE_OK) {
    hex->failed = rc;
    return;
  }
  const unsigned char *bytes = (const unsigned char *)digest;
  for (int i = 0; i < ROW_DIGEST_BYTES; i++) {
    hex->text[hex->used++] = HEX[bytes[i] >> 4];
    hex->text[hex->used++] = HEX[bytes[i] & 0x0f];
  }
}

static void row_sha256_hex_final(sqlite3_context *context) {
  HexDigests *hex = (HexDigests *)sqlite3_aggregate_context(context, 0);
  if (hex != NULL && hex->failed) {
    sqlite3_free(hex->text);
    hex->text = NULL;
    if (hex->failed == SQLITE_NOMEM) {
      sqlite3_result_error_nomem(context);
    } else {
      sqlite3_result_error(context, "aris3nb_row_sha256_hex: a row digest is not a 16-byte BLOB", -1);
    }
  } else if (hex == NULL || hex->used == 0) { /* no rows: no digests */
    sqlite3_result_text(context, "", 0, SQLITE_STATIC);
  } else {
    sqlite3_result_text64(context, hex->text, hex->used, sqlite3_free, SQLITE_UTF8);
    hex->text = NULL; /* SQLite frees it */
  }
}

/* The integer keys aggregate: the first, last and count, and the list once a key breaks the run. */
typedef struct {
  sqlite3_int64 first;
  sqlite3_int64 last;
  sqlite3_int64 count;
  sqlite3_str *listed; /* NULL while every key is the one before plus one */
  int failed;
} IntegerKeys;

static void integer_keys_step(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  IntegerKeys *keys = (IntegerKeys *)sqlite3_aggregate_context(context, sizeof(IntegerKeys));
  if (keys == NULL) {
    sqlite3_result_error_nomem(context);
    return;
  }
  if (keys->failed) return;
  if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER) {
    keys->failed = SQLITE_MISMATCH;
    return;
  }
  sqlite3_int64 key = sqlite3_value_int64(argv[0]);
  if (keys->count > 0 && key <= keys->last) {
    keys->failed = SQLITE_MISMATCH; /* not ascending: not what ORDER BY a unique key gives */
    return;
  }
  if (keys->count > 0 && keys->listed == NULL && key != keys->last + 1) {
    /* The run breaks: write the keys so far (first..last, consecutive), then list every key. */
    keys->listed = sqlite3_str_new(NULL);
    for (sqlite3_int64 k = keys->first;; k++) {
      sqlite3_str_appendf(keys->listed, k == keys->first ? "%lld" : ",%lld", k);
      if (k == keys->last) break;
    }
  }
  if (keys->listed != NULL) sqlite3_str_appendf(keys->listed, ",%lld", key);
  if (keys->count == 0) keys->first = key;
  keys->last = key;
  keys->count++;
}

static void integer_keys_final(sqlite3_context *context) {
  IntegerKeys *keys = (IntegerKeys *)sqlite3_aggregate_context(context, 0);
  if (keys == NULL || (keys->count == 0 && !keys->failed)) {
    sqlite3_result_null(context); /* min(k) of no rows */
    return;
  }
  int written = keys->listed != NULL ? sqlite3_str_errcode(keys->listed) : SQLITE_OK;
  char *listed = keys->listed != NULL ? sqlite3_str_finish(keys->listed) : NULL;
  keys->listed = NULL;
  if (written != SQLITE_OK) {
    sqlite3_free(listed);
    sqlite3_result_error_nomem(context);
    return;
  }
  if (keys->failed || (keys->count > 0 && listed == NULL && keys->last - keys->first + 1 != keys->count)) {
    sqlite3_free(listed);
    sqlite3_result_error(context, "aris3nb_integer_keys: keys are not integers in ascending order", -1);
    return;
  }
  char *text = sqlite3_mprintf("%lld:%s", keys->first, listed != NULL ? listed : "");
  sqlite3_free(listed);
  if (text == NULL) {
    sqlite3_result_error_nomem(context);
    return;
  }
  sqlite3_result_text(context, text, -1, sqlite3_free);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_rowhash_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)error;
  RowHash *scalar = sqlite3_malloc(sizeof(RowHash));
  if (scalar == NULL) return SQLITE_NOMEM;
  memset(scalar, 0, sizeof(RowHash));
  int rc = sqlite3_create_function_v2(db, "aris3nb_row_sha256", -1,
                                      SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, scalar, row_sha256, NULL,
                                      NULL, row_hash_free);
  if (rc != SQLITE_OK) return rc; /* SQLite freed the state */
  rc = sqlite3_create_function_v2(db, "aris3nb_row_sha256_hex", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, NULL, NULL,
                                  row_sha256_hex_step, row_sha256_hex_final, NULL);
  if (rc != SQLITE_OK) return rc;
  return sqlite3_create_function_v2(db, "aris3nb_integer_keys", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, NULL, NULL,
                                    integer_keys_step, integer_keys_final, NULL);
}
