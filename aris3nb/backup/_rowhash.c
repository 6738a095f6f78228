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
 * aris3nb/backup/rowhash.py computes the same digest in Python (docs/FORMAT.md section 5).
 * It replaces sha3(json_array(...)), whose JSON text cost about 2 microseconds a row.
 * Built by setuptools as an optional extension; never imported by Python.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define ROW_DIGEST_BYTES 16

typedef struct {
  EVP_MD_CTX *ctx;
  EVP_MD *md;
  unsigned char *buffer;
  size_t size;
} RowHash;

static void row_hash_free(void *p) {
  RowHash *state = (RowHash *)p;
  if (state == NULL) return;
  if (state->ctx) EVP_MD_CTX_free(state->ctx);
  if (state->md) EVP_MD_free(state->md);
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

static void row_sha256(sqlite3_context *context, int argc, sqlite3_value **argv) {
  RowHash *state = (RowHash *)sqlite3_user_data(context);
  size_t used = 0;
  for (int n = 0; n < argc; n++) {
    sqlite3_value *value = argv[n];
    int type = sqlite3_value_type(value);
    if (type == SQLITE_NULL) {
      if (!reserve(state, used + 1)) goto nomem;
      state->buffer[used++] = 'N';
    } else if (type == SQLITE_INTEGER) {
      if (!reserve(state, used + 9)) goto nomem;
      state->buffer[used] = 'I';
      put_u64(state->buffer + used + 1, (uint64_t)sqlite3_value_int64(value));
      used += 9;
    } else if (type == SQLITE_FLOAT) {
      double real = sqlite3_value_double(value);
      uint64_t bits;
      memcpy(&bits, &real, sizeof bits);
      if (!reserve(state, used + 9)) goto nomem;
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
      if (bytes == NULL && length > 0) goto nomem;
      if (!reserve(state, used + 5 + (size_t)length)) goto nomem;
      state->buffer[used] = tag;
      put_u32(state->buffer + used + 1, (uint32_t)length);
      if (length > 0) memcpy(state->buffer + used + 5, bytes, (size_t)length);
      used += 5 + (size_t)length;
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (!EVP_DigestInit_ex2(state->ctx, state->md, NULL) || !EVP_DigestUpdate(state->ctx, state->buffer, used) ||
      !EVP_DigestFinal_ex(state->ctx, digest, &digest_length) || digest_length < ROW_DIGEST_BYTES) {
    sqlite3_result_error(context, "aris3nb_row_sha256: OpenSSL SHA-256 failed", -1);
    return;
  }
  sqlite3_result_blob(context, digest, ROW_DIGEST_BYTES, SQLITE_TRANSIENT);
  return;
nomem:
  sqlite3_result_error_nomem(context);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_rowhash_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  RowHash *state = sqlite3_malloc(sizeof(RowHash));
  if (state == NULL) return SQLITE_NOMEM;
  memset(state, 0, sizeof(RowHash));
  state->ctx = EVP_MD_CTX_new();
  state->md = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (state->ctx == NULL || state->md == NULL) {
    row_hash_free(state);
    *error = sqlite3_mprintf("aris3nb row hash: OpenSSL has no SHA-256");
    return SQLITE_ERROR;
  }
  return sqlite3_create_function_v2(db, "aris3nb_row_sha256", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                    state, row_sha256, NULL, NULL, row_hash_free);
}
