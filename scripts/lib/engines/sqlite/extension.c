/*
 * The toolkit's SQLite extension: per-row work done in C by the connection that reads the rows,
 * where JavaScript cost more than reading them. Exports: formatting every value in JavaScript cost
 * more than sqlite3's whole `-csv` export (issue #17: 7.4 s for 11M values at 1M dossiers); here
 * JavaScript receives one buffer per CHUNK_BYTES of records and only writes it. Content checksums:
 * the canonical line and SHA-256 of every row (tenant-restore/row-hash.ts) cost a backup ~6 s of
 * CPU at 1M dossiers. The PostgreSQL → SQLite migration: parsing, converting and inserting each
 * COPY line in JavaScript, and rebuilding each row's canonical line to verify it, made the
 * migration cost 1.9 times the CPU of `psql \copy | sqlite3 .import`. Each function gives exactly
 * what the JavaScript it stands for gives (exporters/csv.ts and json.ts with the SQLite value codec;
 * exporters/sql.ts's rows rendered in SQL; row-hash.ts's sums; migration/conversion.ts and
 * checksum.ts), which test/sqlite-export-format.test.ts, test/content-checksum.test.ts and
 * test/migrate-in-c.test.ts compare value by value, random doubles and invalid UTF-8 included.
 *
 *   export_csv_record(kinds, v1, …, vn)   appends one row's CSV record (CRLF included) to the
 *                                         connection's buffer; `kinds` has one letter per value:
 *                                         'b' for a BOOLEAN column (0 and 1 written false and true),
 *                                         'v' for any other.
 *   export_sql_record(head, v1, …, vn)    appends `head` (INSERT INTO "t" VALUES() then the values
 *                                         as quote() writes them, then ");" and LF.
 *   export_json_record(layout, owner, v1, …, vn)
 *                                         appends one row object of data.json (exporters/json.ts:
 *                                         the text of jsonRowLayout around the values as the codec's
 *                                         JSON tokens, the first row of a table without its leading
 *                                         ','); `layout` is kinds, after, before[0], before[1]… joined
 *                                         by U+001F (which JSON.stringify never leaves raw), kinds
 *                                         starting with 'r' when `owner`'s runs are recorded.
 *   The three return the buffer as a blob once it holds CHUNK_BYTES, NULL otherwise: called once
 *   per row in `SELECT chunk FROM (SELECT export_…(…) AS chunk FROM t … LIMIT -1) WHERE chunk IS NOT NULL`.
 *   export_format_rest()                  returns what the buffer still holds (NULL when empty),
 *                                         empties it and starts a new table: record count, byte
 *                                         offset and runs back to 0.
 *   export_format_records()               records appended since the last export_format_rest().
 *   export_format_runs()                  the owner changes since the last call, as a blob of
 *                                         [offset int64 LE][length int32 LE, -1 for NULL][bytes]:
 *                                         the table's byte offset where a row of another owner
 *                                         starts, and that owner as JavaScript's String() writes it
 *                                         (json.ts's runRecorder).
 *   content_checksum(header, kinds, v1, …, vn)
 *                                         aggregate: the rows' count (int64 LE) and the sum modulo
 *                                         2^256 (32 bytes, big-endian) of the SHA-256 of `header`
 *                                         then each row's canonical values as a COPY text line;
 *                                         values in the header's column order, `kinds` two letters
 *                                         per value (codec 'b' BOOLEAN or 'v'; canonical kind 't'
 *                                         as the codec writes it, 'r' real, 'd' datetime). NULL
 *                                         when a value needs what only JavaScript does (a datetime
 *                                         in another form than Prisma's and PostgreSQL's UTC text, a
 *                                         real column holding text): the caller sums those rows itself.
 *
 *   copy_text_insert(sql, kinds, lines)   runs the INSERT `sql` once per line of `lines` (whole lines
 *                                         of PostgreSQL's COPY text), each field converted as
 *                                         conversion.ts's toSqlite does by its letter in `kinds`
 *                                         (copyValue); returns the lines inserted, fewer than all
 *                                         when the next needs JavaScript (a value only it converts
 *                                         or refuses, a broken constraint): that line is not inserted.
 *   copy_text_line(kinds, key, v1, …, vn) appends the row's line of the migration's checksum (its
 *                                         values' canonical text, conversion.ts's canonicalFromSqlite,
 *                                         as checksum.ts's copyTextLine writes it) like the export
 *                                         functions, and notes `key`, the rowid; copy_text_last_key()
 *                                         returns the last noted.
 *
 *   toolkit_extension_source()            the SHA-256 of the extension.c it was built from: a build
 *                                         older than the source (a `git pull` without `npm run build`)
 *                                         is not used, since its functions may not be these.
 *
 * Built by dist.ts (`cc -O2 -shared -fPIC -DTOOLKIT_SOURCE_SHA256=…`) into dist/; loaded by extension.ts.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (256 * 1024)

typedef struct {
  unsigned char *bytes;
  sqlite3_int64 length;
  sqlite3_int64 capacity;
} Buffer;

/* A connection's export: the records not yet handed over, and where the table's stream stands. */
typedef struct {
  Buffer out;
  sqlite3_int64 records;
  /* Bytes of this table already handed over in chunks: out's offset 0 is this far into the table. */
  sqlite3_int64 handedOver;
  /* export_json_record's runs: the owner changes not yet taken, and the current owner (none at first). */
  Buffer runs;
  Buffer owner;
  int hasOwner;
  /* The row's owner, written here to be compared with `owner`. */
  Buffer candidate;
  /* copy_text_line's: a value's canonical text before it is escaped, and the last row's key. */
  Buffer canonical;
  sqlite3_int64 lastKey;
} Export;

static int reserve(Buffer *buffer, sqlite3_int64 more) {
  if (buffer->length + more <= buffer->capacity) return 1;
  /* A chunk's worth at once: the buffer fills to CHUNK_BYTES, then is handed over whole. */
  sqlite3_int64 capacity = buffer->capacity > 0 ? buffer->capacity : CHUNK_BYTES + 4096;
  while (capacity < buffer->length + more) capacity *= 2;
  unsigned char *bytes = sqlite3_realloc64(buffer->bytes, (sqlite3_uint64)capacity);
  if (bytes == 0) return 0;
  buffer->bytes = bytes;
  buffer->capacity = capacity;
  return 1;
}

static void append(Buffer *buffer, const void *bytes, sqlite3_int64 length) {
  memcpy(buffer->bytes + buffer->length, bytes, (size_t)length);
  buffer->length += length;
}

/* Hands the buffer's bytes to SQLite as the function's blob result (NULL when empty) and starts an empty buffer. */
static void resultAndEmpty(sqlite3_context *context, Buffer *buffer) {
  if (buffer->length == 0) {
    sqlite3_result_null(context);
    return;
  }
  sqlite3_result_blob64(context, buffer->bytes, (sqlite3_uint64)buffer->length, sqlite3_free);
  buffer->bytes = 0;
  buffer->length = 0;
  buffer->capacity = 0;
}

/*
 * A double as JavaScript's String(value) writes it (the shortest digits that read back to the same
 * double, ECMA-262 Number::toString); with `asReal`, as db/values.ts's realText: ".0" after an
 * integer-looking text, -0 as "-0.0". "Infinity" and "-Infinity" either way (SQLite stores no NaN).
 * Writes a C string into `out` (at most 27 bytes) and returns its length.
 */
static int numberText(double value, char *out, int asReal) {
  if (isinf(value)) return sprintf(out, value > 0 ? "Infinity" : "-Infinity");
  if (value == 0) return sprintf(out, !asReal ? "0" : signbit(value) ? "-0.0" : "0.0");
  char scientific[40];
  int precision = 1;
  for (; precision <= 17; precision++) {
    snprintf(scientific, sizeof scientific, "%.*e", precision - 1, value);
    if (strtod(scientific, 0) == value) break;
    /*
     * Below a power of two the doubles are twice as dense as above it, so the closest decimal of
     * this many digits can fall outside the value's rounding interval while the next one up is
     * inside: JavaScript then writes that one (fewest digits first, closest second).
     */
    int exponent;
    if (frexp(fabs(value), &exponent) == 0.5) {
      char up[40];
      const char *mark = strchr(scientific, 'e');
      int digits = (int)(mark - scientific);
      memcpy(up, scientific, (size_t)digits);
      int i = digits - 1;
      for (; i >= 0; i--) {
        if (up[i] == '.' || up[i] == '-') continue;
        if (up[i] == '9') {
          up[i] = '0';
          continue;
        }
        up[i]++;
        break;
      }
      /* A carry past the first digit (9.99 → 10.0) changes the exponent: leave it to more digits. */
      if (i >= 0) {
        snprintf(up + digits, sizeof up - (size_t)digits, "%s", mark);
        double read = strtod(up, 0);
        if (read == value && fabs(read) > fabs(strtod(scientific, 0))) {
          memcpy(scientific, up, sizeof up);
          break;
        }
      }
    }
  }
  /* scientific is [-]d[.ddd]e±x: take its digits and its exponent. */
  char digits[20];
  int count = 0;
  const char *p = scientific;
  int negative = *p == '-';
  if (negative) p++;
  for (; *p != 'e'; p++)
    if (*p != '.') digits[count++] = *p;
  int point = atoi(p + 1) + 1; /* digits × 10^(point − count) */
  while (count > 1 && digits[count - 1] == '0') count--;

  char *o = out;
  if (negative) *o++ = '-';
  if (count <= point && point <= 21) {
    memcpy(o, digits, (size_t)count);
    o += count;
    for (int i = count; i < point; i++) *o++ = '0';
    if (asReal) {
      memcpy(o, ".0", 2);
      o += 2;
    }
  } else if (0 < point && point <= 21) {
    memcpy(o, digits, (size_t)point);
    o += point;
    *o++ = '.';
    memcpy(o, digits + point, (size_t)(count - point));
    o += count - point;
  } else if (-6 < point && point <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = point; i < 0; i++) *o++ = '0';
    memcpy(o, digits, (size_t)count);
    o += count;
  } else {
    *o++ = digits[0];
    if (count > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, (size_t)(count - 1));
      o += count - 1;
    }
    o += sprintf(o, "e%c%d", point - 1 >= 0 ? '+' : '-', abs(point - 1));
  }
  *o = 0;
  return (int)(o - out);
}

static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int appendBase64(Buffer *buffer, const unsigned char *bytes, sqlite3_int64 length) {
  if (!reserve(buffer, (length + 2) / 3 * 4)) return 0;
  unsigned char *o = buffer->bytes + buffer->length;
  sqlite3_int64 i = 0;
  for (; i + 2 < length; i += 3) {
    uint32_t n = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
    *o++ = BASE64[n >> 18];
    *o++ = BASE64[n >> 12 & 63];
    *o++ = BASE64[n >> 6 & 63];
    *o++ = BASE64[n & 63];
  }
  if (i < length) {
    uint32_t n = (uint32_t)bytes[i] << 16 | (i + 1 < length ? (uint32_t)bytes[i + 1] << 8 : 0);
    *o++ = BASE64[n >> 18];
    *o++ = BASE64[n >> 12 & 63];
    *o++ = i + 1 < length ? BASE64[n >> 6 & 63] : '=';
    *o++ = '=';
  }
  buffer->length = o - buffer->bytes;
  return 1;
}

static const unsigned char REPLACEMENT[] = {0xEF, 0xBF, 0xBD};

/*
 * How text is written: a CSV field, a SQL string literal, SQL outside literals (an INSERT's head),
 * a JSON string, or as it is (an owner's name).
 */
typedef enum { CSV_FIELD, SQL_LITERAL, SQL_STATEMENT, JSON_STRING, AS_IS } TextStyle;

static const char HEX[] = "0123456789ABCDEF";
static const char LOWER_HEX[] = "0123456789abcdef";

/*
 * Appends text as JavaScript receives it from better-sqlite3 and writes it back as UTF-8: valid
 * UTF-8 is copied, each maximal ill-formed subsequence becomes U+FFFD (the WHATWG decoder's rule,
 * which V8 follows). CSV_FIELD: '"' doubled, quoted when it holds '"', ',', CR or LF, the empty
 * text as "". SQL_LITERAL: quoted with ' doubled, and line breaks spelled '||char(13,10)||',
 * '||char(13)||', '||char(10)||' (the sqlite3 shell drops a CR before LF when it reads a line:
 * sql.ts's spellLineBreaks, which it applies to the whole line); SQL_STATEMENT: only that spelling.
 * JSON_STRING: JSON.stringify's escapes (\" \\ \b \f \n \r \t, other controls as \u00xx).
 */
static int appendText(Buffer *buffer, const unsigned char *text, sqlite3_int64 length, TextStyle style) {
  if (length == 0 && style == CSV_FIELD) {
    if (!reserve(buffer, 2)) return 0;
    append(buffer, "\"\"", 2);
    return 1;
  }
  int special = 0;
  int ascii = 1;
  for (sqlite3_int64 i = 0; i < length; i++) {
    unsigned char c = text[i];
    if (style == JSON_STRING ? c < 0x20 || c == '"' || c == '\\' : c == '\r' || c == '\n' || (style == CSV_FIELD ? c == '"' || c == ',' : style == SQL_LITERAL && c == '\'')) special = 1;
    if (c >= 0x80) ascii = 0;
  }
  /* Worst case: each byte becomes U+FFFD (3 bytes) or a spelled line break (16), and two quotes. */
  if (!reserve(buffer, length * 16 + 2)) return 0;
  int quoted = style == SQL_LITERAL || style == JSON_STRING || (style == CSV_FIELD && special);
  int quote = style == SQL_LITERAL ? '\'' : '"';
  /* The character doubled inside the text (CSV and SQL literals). */
  int doubled = style == CSV_FIELD || style == SQL_LITERAL ? quote : -1;
  if (quoted) buffer->bytes[buffer->length++] = (unsigned char)quote;
  if (ascii && !special) {
    append(buffer, text, length);
  } else {
    sqlite3_int64 i = 0;
    while (i < length) {
      unsigned char c = text[i];
      if (c < 0x80) {
        if (style == JSON_STRING && (c < 0x20 || c == '"' || c == '\\')) {
          const char *short_ = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : 0;
          if (short_ != 0) {
            append(buffer, short_, 2);
          } else {
            unsigned char escape[6] = {'\\', 'u', '0', '0', (unsigned char)LOWER_HEX[c >> 4], (unsigned char)LOWER_HEX[c & 15]};
            append(buffer, escape, 6);
          }
          i++;
          continue;
        }
        if ((style == SQL_LITERAL || style == SQL_STATEMENT) && (c == '\r' || c == '\n')) {
          int crlf = c == '\r' && i + 1 < length && text[i + 1] == '\n';
          const char *spelled = crlf ? "'||char(13,10)||'" : c == '\r' ? "'||char(13)||'" : "'||char(10)||'";
          append(buffer, spelled, (sqlite3_int64)strlen(spelled));
          i += crlf ? 2 : 1;
          continue;
        }
        if (c == doubled) buffer->bytes[buffer->length++] = (unsigned char)doubled;
        buffer->bytes[buffer->length++] = c;
        i++;
        continue;
      }
      int needed = 0;
      unsigned char lower = 0x80, upper = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) needed = 1;
      else if (c >= 0xE0 && c <= 0xEF) {
        needed = 2;
        if (c == 0xE0) lower = 0xA0;
        if (c == 0xED) upper = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        needed = 3;
        if (c == 0xF0) lower = 0x90;
        if (c == 0xF4) upper = 0x8F;
      }
      if (needed == 0) {
        append(buffer, REPLACEMENT, 3);
        i++;
        continue;
      }
      sqlite3_int64 j = i + 1;
      int seen = 0;
      while (seen < needed && j < length && text[j] >= lower && text[j] <= upper) {
        lower = 0x80;
        upper = 0xBF;
        seen++;
        j++;
      }
      if (seen == needed) append(buffer, text + i, j - i);
      else append(buffer, REPLACEMENT, 3); /* the byte that broke the sequence starts anew */
      i = j;
    }
  }
  if (quoted) buffer->bytes[buffer->length++] = (unsigned char)quote;
  return 1;
}

/* Bytes as hexadecimal `digits`: HEX as SQLite's hex() and quote() write them, LOWER_HEX as PostgreSQL and Buffer do. */
static int appendHex(Buffer *buffer, const unsigned char *bytes, sqlite3_int64 length, const char *digits) {
  if (!reserve(buffer, length * 2)) return 0;
  unsigned char *o = buffer->bytes + buffer->length;
  for (sqlite3_int64 i = 0; i < length; i++) {
    *o++ = (unsigned char)digits[bytes[i] >> 4];
    *o++ = (unsigned char)digits[bytes[i] & 15];
  }
  buffer->length += length * 2;
  return 1;
}

static int appendBytes(Buffer *buffer, const void *bytes, sqlite3_int64 length) {
  if (!reserve(buffer, length)) return 0;
  append(buffer, bytes, length);
  return 1;
}

static int appendAscii(Buffer *buffer, const char *text) {
  return appendBytes(buffer, text, (sqlite3_int64)strlen(text));
}

/* An integer as the codec writes it: its digits, or false / true for a BOOLEAN column's ('b') 0 and 1. */
static int appendInteger(Buffer *buffer, sqlite3_int64 n, char kind) {
  char text[24];
  if (kind == 'b' && (n == 0 || n == 1)) return appendAscii(buffer, n == 1 ? "true" : "false");
  sprintf(text, "%lld", (long long)n);
  return appendAscii(buffer, text);
}

/*
 * One value as the codec writes it (rules in db/values.ts), as a CSV field (CSV_FIELD) or a JSON
 * token (JSON_STRING); `kind` 'b' for a BOOLEAN column. NULL is an empty field or null; numbers are
 * bare, but JSON has no infinite numbers (realJson writes them as strings); text and base64 blobs
 * are strings (CSV quotes them only where needed, and the empty one always, as "").
 */
static int appendCodecValue(Buffer *buffer, sqlite3_value *value, char kind, TextStyle style) {
  char text[64];
  int json = style == JSON_STRING;
  switch (sqlite3_value_type(value)) {
    case SQLITE_NULL:
      return json ? appendAscii(buffer, "null") : 1;
    case SQLITE_INTEGER:
      return appendInteger(buffer, sqlite3_value_int64(value), kind);
    case SQLITE_FLOAT: {
      double real = sqlite3_value_double(value);
      int length = numberText(real, text, 1);
      if (json && isinf(real)) return appendText(buffer, (const unsigned char *)text, length, JSON_STRING);
      return appendAscii(buffer, text);
    }
    case SQLITE_TEXT: {
      const unsigned char *bytes = sqlite3_value_text(value);
      if (bytes == 0) return 0;
      return appendText(buffer, bytes, sqlite3_value_bytes(value), style);
    }
    default: {
      const unsigned char *bytes = sqlite3_value_blob(value);
      sqlite3_int64 size = sqlite3_value_bytes(value);
      if (size == 0) return appendText(buffer, (const unsigned char *)"", 0, style);
      if (!json) return appendBase64(buffer, bytes, size);
      return appendAscii(buffer, "\"") && appendBase64(buffer, bytes, size) && appendAscii(buffer, "\"");
    }
  }
}

/*
 * One value as the SQL literal sql.ts renders in SQL: quote()'s own text for numbers and blobs
 * (reals "%!0.17g", infinity 9.0e+999), text with NUL as CAST(X'…' AS TEXT) since quote() would
 * cut it there.
 */
static int appendSqlValue(Buffer *buffer, sqlite3_value *value) {
  char text[64];
  switch (sqlite3_value_type(value)) {
    case SQLITE_NULL:
      return appendAscii(buffer, "NULL");
    case SQLITE_INTEGER:
      return appendInteger(buffer, sqlite3_value_int64(value), 'v');
    case SQLITE_FLOAT:
      sqlite3_snprintf(sizeof text, text, "%!0.17g", sqlite3_value_double(value));
      return appendAscii(buffer, text);
    case SQLITE_TEXT: {
      const unsigned char *bytes = sqlite3_value_text(value);
      if (bytes == 0) return 0;
      sqlite3_int64 length = sqlite3_value_bytes(value);
      if (memchr(bytes, 0, (size_t)length) == 0) return appendText(buffer, bytes, length, SQL_LITERAL);
      return appendAscii(buffer, "CAST(X'") && appendHex(buffer, bytes, length, HEX) && appendAscii(buffer, "' AS TEXT)");
    }
    default: {
      const unsigned char *bytes = sqlite3_value_blob(value);
      return appendAscii(buffer, "X'") && appendHex(buffer, bytes, sqlite3_value_bytes(value), HEX) && appendAscii(buffer, "'");
    }
  }
}

/* Ends a record: counts it, and hands the buffer over once it holds CHUNK_BYTES. */
static void endRecord(sqlite3_context *context, Export *export) {
  export->records++;
  if (export->out.length >= CHUNK_BYTES) {
    export->handedOver += export->out.length;
    resultAndEmpty(context, &export->out);
  } else {
    sqlite3_result_null(context);
  }
}

static void csvRecord(sqlite3_context *context, int argc, sqlite3_value **argv) {
  Export *export = sqlite3_user_data(context);
  Buffer *out = &export->out;
  const char *kinds = (const char *)sqlite3_value_text(argv[0]);
  if (kinds == 0 || (int)strlen(kinds) != argc - 1) {
    sqlite3_result_error(context, "export_csv_record: kinds must have one letter per value", -1);
    return;
  }
  for (int i = 1; i < argc; i++) {
    if (i > 1 && !appendAscii(out, ",")) goto nomem;
    if (!appendCodecValue(out, argv[i], kinds[i - 1], CSV_FIELD)) goto nomem;
  }
  if (!appendAscii(out, "\r\n")) goto nomem;
  endRecord(context, export);
  return;
nomem:
  sqlite3_result_error_nomem(context);
}

static void sqlRecord(sqlite3_context *context, int argc, sqlite3_value **argv) {
  Export *export = sqlite3_user_data(context);
  Buffer *out = &export->out;
  const unsigned char *head = sqlite3_value_text(argv[0]);
  if (head == 0) {
    sqlite3_result_error(context, "export_sql_record: head must be text", -1);
    return;
  }
  if (!appendText(out, head, sqlite3_value_bytes(argv[0]), SQL_STATEMENT)) goto nomem;
  for (int i = 1; i < argc; i++) {
    if (i > 1 && !appendAscii(out, ",")) goto nomem;
    if (!appendSqlValue(out, argv[i])) goto nomem;
  }
  if (!appendAscii(out, ");\n")) goto nomem;
  endRecord(context, export);
  return;
nomem:
  sqlite3_result_error_nomem(context);
}

/* export_json_record's layout, parsed once per statement (kept as the argument's auxiliary data). */
typedef struct {
  int columns;
  int recordsRuns;
  const char *kinds;
  const char **before;
  sqlite3_int64 *beforeLength;
  const char *after;
  sqlite3_int64 afterLength;
  char *text;
} Layout;

static void freeLayout(void *pointer) {
  Layout *layout = pointer;
  sqlite3_free(layout->text);
  sqlite3_free(layout->before);
  sqlite3_free(layout->beforeLength);
  sqlite3_free(layout);
}

/* Splits "kinds␟after␟before0␟before1…" (␟ = U+001F); NULL when it does not have `columns` befores. */
static Layout *parseLayout(const unsigned char *text, sqlite3_int64 length, int columns) {
  Layout *layout = sqlite3_malloc(sizeof *layout);
  if (layout == 0) return 0;
  memset(layout, 0, sizeof *layout);
  layout->columns = columns;
  layout->text = sqlite3_malloc64((sqlite3_uint64)length + 1);
  layout->before = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)(columns + 1));
  layout->beforeLength = sqlite3_malloc64(sizeof(sqlite3_int64) * (sqlite3_uint64)(columns + 1));
  if (layout->text == 0 || layout->before == 0 || layout->beforeLength == 0) goto fail;
  memcpy(layout->text, text, (size_t)length);
  layout->text[length] = 0;
  /* Fields: kinds, after, then one before per column. */
  const char *fields[1002];
  sqlite3_int64 lengths[1002];
  int count = 0;
  char *field = layout->text;
  for (sqlite3_int64 i = 0; i <= length; i++) {
    if (i < length && layout->text[i] != 0x1f) continue;
    if (count == 1002) goto fail;
    fields[count] = field;
    lengths[count] = layout->text + i - field;
    layout->text[i] = 0;
    count++;
    field = layout->text + i + 1;
  }
  if (count != columns + 2 || lengths[0] != columns + 1) goto fail;
  layout->recordsRuns = fields[0][0] == 'r';
  layout->kinds = fields[0] + 1;
  layout->after = fields[1];
  layout->afterLength = lengths[1];
  for (int i = 0; i < columns; i++) {
    layout->before[i] = fields[i + 2];
    layout->beforeLength[i] = lengths[i + 2];
  }
  /* The first row of a table drops before[0]'s leading ','. */
  if (columns > 0 && (lengths[2] == 0 || fields[2][0] != ',')) goto fail;
  return layout;
fail:
  freeLayout(layout);
  return 0;
}

/*
 * Notes a row of `owner` starting at the table's byte offset `at` when its owner differs from the
 * previous row's (json.ts's runRecorder: owners compare as String(value), NULL belongs to no run).
 */
static int noteOwner(Export *export, sqlite3_value *owner, sqlite3_int64 at) {
  Buffer *name = &export->candidate;
  name->length = 0;
  int isNull = sqlite3_value_type(owner) == SQLITE_NULL;
  if (!isNull) {
    char text[64];
    int ok;
    switch (sqlite3_value_type(owner)) {
      case SQLITE_INTEGER:
        ok = appendInteger(name, sqlite3_value_int64(owner), 'v');
        break;
      case SQLITE_FLOAT:
        numberText(sqlite3_value_double(owner), text, 0);
        ok = appendAscii(name, text);
        break;
      default: {
        /* Text, and a blob as Buffer's String(): its bytes read as UTF-8. */
        const unsigned char *bytes = sqlite3_value_type(owner) == SQLITE_TEXT ? sqlite3_value_text(owner) : sqlite3_value_blob(owner);
        sqlite3_int64 length = sqlite3_value_bytes(owner);
        ok = length == 0 || (bytes != 0 && appendText(name, bytes, length, AS_IS));
      }
    }
    if (!ok) return 0;
  }
  int same = isNull ? !export->hasOwner : export->hasOwner && name->length == export->owner.length && (name->length == 0 || memcmp(name->bytes, export->owner.bytes, (size_t)name->length) == 0);
  if (same) return 1;
  int32_t length = isNull ? -1 : (int32_t)name->length;
  int64_t offset = at;
  if (!reserve(&export->runs, 12 + name->length)) return 0;
  append(&export->runs, &offset, 8);
  append(&export->runs, &length, 4);
  if (!isNull) append(&export->runs, name->bytes, name->length);
  /* The candidate becomes the owner; the old owner's memory holds the next candidate. */
  Buffer previous = export->owner;
  export->owner = *name;
  *name = previous;
  export->hasOwner = !isNull;
  return 1;
}

static void jsonRecord(sqlite3_context *context, int argc, sqlite3_value **argv) {
  Export *export = sqlite3_user_data(context);
  Buffer *out = &export->out;
  /* Parsed on the first row; SQLite keeps it with the statement while the argument stays the same. */
  Layout *layout = sqlite3_get_auxdata(context, 0);
  int parsed = layout == 0;
  if (parsed) {
    const unsigned char *text = sqlite3_value_text(argv[0]);
    layout = text == 0 || argc < 3 ? 0 : parseLayout(text, sqlite3_value_bytes(argv[0]), argc - 2);
    if (layout == 0) {
      sqlite3_result_error(context, "export_json_record: layout must be kinds, after and one before per value", -1);
      return;
    }
  }
  if (layout->recordsRuns && !noteOwner(export, argv[1], export->handedOver + out->length)) goto nomem;
  for (int i = 0; i < layout->columns; i++) {
    /* The first row of a table has no ',' before it. */
    int skip = i == 0 && export->records == 0;
    if (!reserve(out, layout->beforeLength[i])) goto nomem;
    append(out, layout->before[i] + skip, layout->beforeLength[i] - skip);
    if (!appendCodecValue(out, argv[i + 2], layout->kinds[i], JSON_STRING)) goto nomem;
  }
  if (!reserve(out, layout->afterLength)) goto nomem;
  append(out, layout->after, layout->afterLength);
  if (parsed) sqlite3_set_auxdata(context, 0, layout, freeLayout);
  endRecord(context, export);
  return;
nomem:
  if (parsed) freeLayout(layout);
  sqlite3_result_error_nomem(context);
}

/* SHA-256 (FIPS 180-4), for content_checksum: one short message per row. */
static const uint32_t SHA256_K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256Block(uint32_t state[8], const unsigned char *block) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)block[i * 4] << 24 | (uint32_t)block[i * 4 + 1] << 16 | (uint32_t)block[i * 4 + 2] << 8 | block[i * 4 + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i];
    uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

/* The SHA-256 of `length` bytes as eight big-endian words. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

/*
 * The same blocks with the CPU's SHA instructions (Intel SHA extensions; the state kept as ABEF and
 * CDGH, as they want it), 5 to 8 times faster than sha256Block: content_checksum hashes every row.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha256BlockShaNi(uint32_t state[8], const unsigned char *block) {
  const __m128i byteSwap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i cdab = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
  __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  const __m128i abefBefore = abef, cdghBefore = cdgh;
  /* w[j % 4] holds the message words 4j…4j+3 (each computed from the four vectors before it). */
  __m128i w[4];
  for (int j = 0; j < 16; j++) {
    if (j < 4) {
      w[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * j)), byteSwap);
    } else {
      __m128i next = _mm_sha256msg1_epu32(w[j % 4], w[(j + 1) % 4]);
      next = _mm_add_epi32(next, _mm_alignr_epi8(w[(j + 3) % 4], w[(j + 2) % 4], 4));
      w[j % 4] = _mm_sha256msg2_epu32(next, w[(j + 3) % 4]);
    }
    __m128i message = _mm_add_epi32(w[j % 4], _mm_loadu_si128((const __m128i *)&SHA256_K[4 * j]));
    cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);
    abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(message, 0x0E));
  }
  abef = _mm_add_epi32(abef, abefBefore);
  cdgh = _mm_add_epi32(cdgh, cdghBefore);
  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}

/* Whether this CPU has the SHA extensions (and the SSE4.1 and SSSE3 they are used with). */
static int cpuHasSha(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b & (1u << 29)) != 0;
}
#endif

/* The block function this CPU runs best (set by sqlite3_extension_init). */
static void (*sha256Blocks)(uint32_t state[8], const unsigned char *block) = sha256Block;

static void sha256(const unsigned char *bytes, sqlite3_int64 length, uint32_t digest[8]) {
  static const uint32_t INITIAL[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(digest, INITIAL, sizeof INITIAL);
  sqlite3_int64 whole = length - length % 64;
  for (sqlite3_int64 i = 0; i < whole; i += 64) sha256Blocks(digest, bytes + i);
  unsigned char tail[128] = {0};
  sqlite3_int64 left = length - whole;
  memcpy(tail, bytes + whole, (size_t)left);
  tail[left] = 0x80;
  int blocks = left + 9 <= 64 ? 1 : 2;
  uint64_t bits = (uint64_t)length * 8;
  for (int i = 0; i < 8; i++) tail[blocks * 64 - 1 - i] = (unsigned char)(bits >> (i * 8));
  for (int i = 0; i < blocks; i++) sha256Blocks(digest, tail + i * 64);
}

/* content_checksum's running state (SQLite's aggregate context: zeroed at the first row). */
typedef struct {
  uint32_t sum[8];
  sqlite3_int64 rows;
  int inJavaScript;
  Buffer line;
  Buffer value;
} Checksum;

static int isDigitAt(const unsigned char *text, sqlite3_int64 from, sqlite3_int64 to) {
  for (sqlite3_int64 i = from; i < to; i++)
    if (text[i] < '0' || text[i] > '9') return 0;
  return 1;
}

/*
 * conversion.ts's isDate and isTime (the forms canonical.ts reads too): `YYYY-MM-DD` at 0,
 * `HH:MM:SS` at `at`, within `length` bytes.
 */
static int isDateText(const unsigned char *text, sqlite3_int64 length) {
  return length >= 10 && isDigitAt(text, 0, 4) && text[4] == '-' && isDigitAt(text, 5, 7) && text[7] == '-' && isDigitAt(text, 8, 10);
}

static int isTimeText(const unsigned char *text, sqlite3_int64 length, sqlite3_int64 at) {
  return length >= at + 8 && isDigitAt(text, at, at + 2) && text[at + 2] == ':' && isDigitAt(text, at + 3, at + 5) && text[at + 5] == ':' && isDigitAt(text, at + 6, at + 8);
}

/*
 * canonical.ts's canonicalUtcDateTime: `YYYY-MM-DD[T ]HH:MM:SS`, an optional `.fraction`, then
 * nothing, `Z` or `+00:00` becomes `YYYY-MM-DD HH:MM:SS[.fraction without trailing zeros]`, in
 * place in `text`; returns the new length, or -1 for any other form.
 */
static sqlite3_int64 utcDateTime(unsigned char *text, sqlite3_int64 length) {
  if (!isDateText(text, length) || !isTimeText(text, length, 11) || (text[10] != 'T' && text[10] != ' ')) return -1;
  sqlite3_int64 end = length;
  if (text[length - 1] == 'Z') end -= 1;
  else if (length >= 6 && memcmp(text + length - 6, "+00:00", 6) == 0) end -= 6;
  sqlite3_int64 fractionEnd = 19;
  if (end > 19) {
    if (text[19] != '.' || end == 20 || !isDigitAt(text, 20, end)) return -1;
    fractionEnd = end;
    while (fractionEnd > 20 && text[fractionEnd - 1] == '0') fractionEnd--;
    if (fractionEnd == 20) fractionEnd = 19;
  }
  text[10] = ' ';
  return fractionEnd;
}

/*
 * One value's canonical text (canonical.ts over the codec's text) into `out`; 0 when JavaScript
 * must do it (the row is then left to the caller), -1 when out of memory.
 */
static int canonicalValue(Buffer *out, sqlite3_value *value, char codec, char kind) {
  char text[64];
  out->length = 0;
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER: {
      sqlite3_int64 n = sqlite3_value_int64(value);
      /* A real column's integer: Number(digits), the double nearest to it, as String() writes it. */
      if (kind == 'r' && !(codec == 'b' && (n == 0 || n == 1))) {
        numberText((double)n, text, 0);
        return appendAscii(out, text) ? 1 : -1;
      }
      return appendInteger(out, n, codec) ? 1 : -1;
    }
    case SQLITE_FLOAT:
      /* realText's text read back by Number() is the same double: String() of it for a real column. */
      numberText(sqlite3_value_double(value), text, kind != 'r');
      return appendAscii(out, text) ? 1 : -1;
    case SQLITE_TEXT: {
      if (kind == 'r') return 0;
      const unsigned char *bytes = sqlite3_value_text(value);
      if (bytes == 0) return -1;
      if (!appendText(out, bytes, sqlite3_value_bytes(value), AS_IS)) return -1;
      if (kind == 'd') {
        sqlite3_int64 length = utcDateTime(out->bytes, out->length);
        if (length < 0) return 0;
        out->length = length;
      }
      return 1;
    }
    default: {
      /* A blob's base64 has no '-' or ':': no datetime reads it; but Number() may ("1E10"). */
      if (kind == 'r') return 0;
      sqlite3_int64 size = sqlite3_value_bytes(value);
      if (size == 0) return reserve(out, 1) ? 1 : -1;
      return appendBase64(out, sqlite3_value_blob(value), size) ? 1 : -1;
    }
  }
}

/* Appends `value` escaped as COPY's text format does (migration/checksum.ts's escapeCopyText). */
static int appendCopyText(Buffer *line, const Buffer *value) {
  if (!reserve(line, value->length * 2)) return 0;
  for (sqlite3_int64 i = 0; i < value->length; i++) {
    unsigned char c = value->bytes[i];
    char escaped = c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\v' ? 'v' : 0;
    if (escaped) {
      line->bytes[line->length++] = '\\';
      line->bytes[line->length++] = (unsigned char)escaped;
    } else {
      line->bytes[line->length++] = c;
    }
  }
  return 1;
}

static void checksumStep(sqlite3_context *context, int argc, sqlite3_value **argv) {
  Checksum *checksum = sqlite3_aggregate_context(context, sizeof *checksum);
  if (checksum == 0) goto nomem;
  if (checksum->inJavaScript) return;
  const unsigned char *header = sqlite3_value_text(argv[0]);
  const char *kinds = (const char *)sqlite3_value_text(argv[1]);
  if (header == 0 || kinds == 0 || (int)strlen(kinds) != 2 * (argc - 2)) {
    sqlite3_result_error(context, "content_checksum: kinds must have two letters per value", -1);
    return;
  }
  Buffer *line = &checksum->line;
  line->length = 0;
  if (!reserve(line, sqlite3_value_bytes(argv[0]))) goto nomem;
  append(line, header, sqlite3_value_bytes(argv[0]));
  for (int i = 2; i < argc; i++) {
    if (i > 2 && !appendAscii(line, "\t")) goto nomem;
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
      if (!appendAscii(line, "\\N")) goto nomem;
      continue;
    }
    int done = canonicalValue(&checksum->value, argv[i], kinds[2 * (i - 2)], kinds[2 * (i - 2) + 1]);
    if (done < 0) goto nomem;
    if (done == 0) {
      checksum->inJavaScript = 1;
      return;
    }
    if (!appendCopyText(line, &checksum->value)) goto nomem;
  }
  if (!appendAscii(line, "\n")) goto nomem;
  uint32_t digest[8];
  sha256(line->bytes, line->length, digest);
  uint64_t carry = 0;
  for (int i = 7; i >= 0; i--) {
    uint64_t sum = (uint64_t)checksum->sum[i] + digest[i] + carry;
    checksum->sum[i] = (uint32_t)sum;
    carry = sum >> 32;
  }
  checksum->rows++;
  return;
nomem:
  sqlite3_result_error_nomem(context);
}

static void checksumFinal(sqlite3_context *context) {
  Checksum *checksum = sqlite3_aggregate_context(context, 0);
  if (checksum != 0) {
    sqlite3_free(checksum->line.bytes);
    sqlite3_free(checksum->value.bytes);
  }
  if (checksum != 0 && checksum->inJavaScript) {
    sqlite3_result_null(context);
    return;
  }
  unsigned char result[40] = {0};
  if (checksum != 0) {
    int64_t rows = checksum->rows;
    memcpy(result, &rows, 8);
    for (int i = 0; i < 8; i++)
      for (int b = 0; b < 4; b++) result[8 + i * 4 + b] = (unsigned char)(checksum->sum[i] >> (24 - 8 * b));
  }
  sqlite3_result_blob(context, result, sizeof result, SQLITE_TRANSIENT);
}

/*
 * The migration's per-row work (migration/copy.ts and verify.ts): PostgreSQL COPY text lines into
 * a table, and the table's rows back into the verification's canonical lines.
 */

/* One value of a COPY row, ready to bind: NULL, an integer, text or a blob at `bytes` (in the lines or the row's scratch). */
typedef struct {
  int type;
  sqlite3_int64 integer;
  const unsigned char *bytes;
  sqlite3_int64 offset;
  sqlite3_int64 length;
} CopyValue;

/* A COPY escape's character (PostgreSQL writes only these in text format), 0 for any other. */
static unsigned char copyEscape(unsigned char c) {
  switch (c) {
    case '\\': return '\\';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'v': return '\v';
    default: return 0;
  }
}

/*
 * conversion.ts's datetime toSqlite: PostgreSQL's timestamp, timestamptz (+00) or date text as
 * Prisma stores a DateTime, `YYYY-MM-DDTHH:MM:SS.fff+00:00` (6 fraction digits when more than 3
 * are significant). 0 for any other text: JavaScript then says why it cannot be stored.
 */
static int appendPrismaDateTime(Buffer *out, const unsigned char *text, sqlite3_int64 length) {
  sqlite3_int64 end = length;
  if (length >= 3 && memcmp(text + length - 3, "+00", 3) == 0) end -= 3;
  else if (length >= 6 && memcmp(text + length - 6, "+00:00", 6) == 0) end -= 6;
  if (!isDateText(text, length)) return 0;
  int dateOnly = end == 10;
  if (!dateOnly && !(text[10] == ' ' && isTimeText(text, length, 11) && (end == 19 || (text[19] == '.' && end > 20 && end <= 26 && isDigitAt(text, 20, end))))) return 0;
  sqlite3_int64 fractionEnd = end > 20 ? end : 20;
  while (fractionEnd > 20 && text[fractionEnd - 1] == '0') fractionEnd--;
  sqlite3_int64 digits = fractionEnd - 20;
  if (!reserve(out, 33)) return -1;
  append(out, text, 10);
  append(out, "T", 1);
  append(out, dateOnly ? (const unsigned char *)"00:00:00" : text + 11, 8);
  append(out, ".", 1);
  if (digits > 0) append(out, text + 20, digits);
  for (sqlite3_int64 i = digits; i < (digits <= 3 ? 3 : 6); i++) append(out, "0", 1);
  append(out, "+00:00", 6);
  return 1;
}

static int hexDigit(unsigned char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * One COPY field as conversion.ts's toSqlite gives it to better-sqlite3, by `kind`: 't' text (and
 * integers and enums: JavaScript binds their text, the column's affinity does the rest), 'i' an
 * integer (bound as one when it has at most 18 digits: what INTEGER affinity makes of its text),
 * 'b' boolean (1 for t, 0 for anything else), 'd' datetime, 'x' bytea hex. 1 when converted, 0 when
 * JavaScript must do it (an escape PostgreSQL does not write, a value it refuses), -1 out of memory.
 */
static int copyValue(Buffer *scratch, Buffer *plain, const unsigned char *field, sqlite3_int64 length, char kind, CopyValue *value) {
  value->bytes = 0;
  value->offset = -1;
  if (length == 2 && field[0] == '\\' && field[1] == 'N') {
    value->type = SQLITE_NULL;
    return 1;
  }
  const unsigned char *backslash = memchr(field, '\\', (size_t)length);
  switch (kind) {
    case 'b':
      if (backslash != 0) return 0;
      value->type = SQLITE_INTEGER;
      value->integer = length == 1 && field[0] == 't';
      return 1;
    case 'i':
      if (length > 0 && length <= 19 && (field[0] == '-' ? length > 1 && isDigitAt(field, 1, length) : length <= 18 && isDigitAt(field, 0, length))) {
        value->type = SQLITE_INTEGER;
        value->integer = strtoll((const char *)field, 0, 10);
        return 1;
      }
      kind = 't';
      break;
    case 'd': {
      value->type = SQLITE_TEXT;
      value->offset = scratch->length;
      int done = appendPrismaDateTime(scratch, field, length);
      value->length = scratch->length - value->offset;
      return done;
    }
    case 'x': {
      /* `\\x…`: bytea's hex output, its backslash escaped by COPY. */
      if (length < 3 || field[0] != '\\' || field[1] != '\\' || field[2] != 'x' || (length - 3) % 2 != 0) return 0;
      sqlite3_int64 size = (length - 3) / 2;
      if (!reserve(scratch, size)) return -1;
      value->type = SQLITE_BLOB;
      value->offset = scratch->length;
      value->length = size;
      for (sqlite3_int64 i = 0; i < size; i++) {
        int high = hexDigit(field[3 + 2 * i]), low = hexDigit(field[4 + 2 * i]);
        if (high < 0 || low < 0) return 0;
        scratch->bytes[scratch->length++] = (unsigned char)(high << 4 | low);
      }
      return 1;
    }
  }
  if (kind != 't') return -2;
  value->type = SQLITE_TEXT;
  int ascii = 1;
  for (sqlite3_int64 i = 0; i < length && ascii; i++) ascii = field[i] < 0x80;
  if (backslash == 0 && ascii) {
    value->bytes = field;
    value->length = length;
    return 1;
  }
  /* Escapes undone, then the bytes decoded as JavaScript decodes them (escapes are ASCII: the order does not matter). */
  plain->length = 0;
  if (!reserve(plain, length)) return -1;
  for (sqlite3_int64 i = 0; i < length; i++) {
    if (field[i] != '\\') {
      plain->bytes[plain->length++] = field[i];
      continue;
    }
    unsigned char escaped = i + 1 < length ? copyEscape(field[i + 1]) : 0;
    if (escaped == 0) return 0;
    plain->bytes[plain->length++] = escaped;
    i++;
  }
  value->offset = scratch->length;
  if (!appendText(scratch, plain->bytes, plain->length, AS_IS)) return -1;
  value->length = scratch->length - value->offset;
  return 1;
}

/*
 * copy_text_insert(sql, kinds, lines): runs the INSERT `sql` (one ? per column) once per line of
 * `lines`, whole COPY text lines, each field converted by its letter in `kinds` (copyValue).
 * Returns how many lines were inserted: fewer than all when a line needs JavaScript (its conversion
 * or a constraint it breaks; that line is not inserted, so JavaScript takes over from it, and says
 * why). Other errors (disk full, I/O) are this function's error.
 */
static void copyTextInsert(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *sql = (const char *)sqlite3_value_text(argv[0]);
  const char *kinds = (const char *)sqlite3_value_text(argv[1]);
  const unsigned char *lines = sqlite3_value_blob(argv[2]);
  sqlite3_int64 size = sqlite3_value_bytes(argv[2]);
  if (sql == 0 || kinds == 0 || (lines == 0 && size > 0)) {
    sqlite3_result_error(context, "copy_text_insert: sql, kinds and lines expected", -1);
    return;
  }
  int width = (int)strlen(kinds);
  sqlite3_stmt *insert = 0;
  Buffer scratch = {0, 0, 0}, plain = {0, 0, 0};
  CopyValue *values = sqlite3_malloc64(sizeof(CopyValue) * (sqlite3_uint64)(width > 0 ? width : 1));
  sqlite3_int64 inserted = 0;
  if (values == 0) goto nomem;
  int rc = sqlite3_prepare_v2(sqlite3_context_db_handle(context), sql, -1, &insert, 0);
  if (rc != SQLITE_OK || sqlite3_bind_parameter_count(insert) != width) {
    sqlite3_result_error(context, "copy_text_insert: the statement must take one parameter per kind", -1);
    goto done;
  }
  sqlite3_int64 at = 0;
  while (at < size) {
    const unsigned char *line = lines + at;
    const unsigned char *end = memchr(line, '\n', (size_t)(size - at));
    if (end == 0) break;
    scratch.length = 0;
    const unsigned char *field = line;
    int column = 0;
    for (;;) {
      const unsigned char *stop = memchr(field, '\t', (size_t)(end - field));
      if (stop == 0) stop = end;
      if (column == width) goto javascript;
      int done = copyValue(&scratch, &plain, field, stop - field, kinds[column], &values[column]);
      if (done == -2) {
        sqlite3_result_error(context, "copy_text_insert: unknown kind", -1);
        goto done;
      }
      if (done < 0) goto nomem;
      if (done == 0) goto javascript;
      column++;
      if (stop == end) break;
      field = stop + 1;
    }
    if (column != width) goto javascript;
    for (int i = 0; i < width; i++) {
      CopyValue *value = &values[i];
      const unsigned char *bytes = value->offset >= 0 ? scratch.bytes + value->offset : value->bytes;
      switch (value->type) {
        case SQLITE_NULL: rc = sqlite3_bind_null(insert, i + 1); break;
        case SQLITE_INTEGER: rc = sqlite3_bind_int64(insert, i + 1, value->integer); break;
        case SQLITE_TEXT: rc = sqlite3_bind_text64(insert, i + 1, (const char *)bytes, (sqlite3_uint64)value->length, SQLITE_STATIC, SQLITE_UTF8); break;
        default: rc = value->length == 0 ? sqlite3_bind_zeroblob(insert, i + 1, 0) : sqlite3_bind_blob64(insert, i + 1, bytes, (sqlite3_uint64)value->length, SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) goto failed;
    }
    rc = sqlite3_step(insert);
    sqlite3_reset(insert);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) goto javascript;
    if (rc != SQLITE_DONE) goto failed;
    inserted++;
    at = end - lines + 1;
  }
javascript:
  sqlite3_result_int64(context, inserted);
  goto done;
failed:
  sqlite3_result_error(context, sqlite3_errmsg(sqlite3_context_db_handle(context)), -1);
  sqlite3_result_error_code(context, rc);
  goto done;
nomem:
  sqlite3_result_error_nomem(context);
done:
  sqlite3_finalize(insert);
  sqlite3_free(scratch.bytes);
  sqlite3_free(plain.bytes);
  sqlite3_free(values);
}

/*
 * conversion.ts's unexpected(): a stored value of another type than the column's kind gives, as a
 * text no PostgreSQL value has (NUL, its JavaScript type, ':', its String()), so it never matches.
 */
static int appendUnexpected(Buffer *out, sqlite3_value *value) {
  char text[64];
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
      return appendBytes(out, "\0bigint:", 8) && appendInteger(out, sqlite3_value_int64(value), 'v');
    case SQLITE_FLOAT:
      numberText(sqlite3_value_double(value), text, 0);
      return appendBytes(out, "\0number:", 8) && appendAscii(out, text);
    case SQLITE_TEXT: {
      const unsigned char *bytes = sqlite3_value_text(value);
      return bytes != 0 && appendBytes(out, "\0string:", 8) && appendText(out, bytes, sqlite3_value_bytes(value), AS_IS);
    }
    default:
      return appendBytes(out, "\0blob:", 6) && appendHex(out, sqlite3_value_blob(value), sqlite3_value_bytes(value), LOWER_HEX);
  }
}

/*
 * conversion.ts's canonicalFromSqlite for the kinds whose canonical text is PostgreSQL's own: 't'
 * text, 'i' integer, 'b' boolean (t / f), 'x' bytea (\x and lowercase hex), and DATETIME read back
 * as 'd' timestamp, 'z' timestamptz (+00) or 'D' date. 1 when written, 0 out of memory.
 */
static int appendCanonicalStored(Buffer *out, sqlite3_value *value, char kind) {
  out->length = 0;
  int type = sqlite3_value_type(value);
  switch (kind) {
    case 't':
      if (type != SQLITE_TEXT) break;
      return sqlite3_value_text(value) != 0 && appendText(out, sqlite3_value_text(value), sqlite3_value_bytes(value), AS_IS);
    case 'i':
      if (type != SQLITE_INTEGER) break;
      return appendInteger(out, sqlite3_value_int64(value), 'v');
    case 'b':
      if (type != SQLITE_INTEGER || (sqlite3_value_int64(value) != 0 && sqlite3_value_int64(value) != 1)) break;
      return appendAscii(out, sqlite3_value_int64(value) == 1 ? "t" : "f");
    case 'x':
      if (type != SQLITE_BLOB) break;
      return appendBytes(out, "\\x", 2) && appendHex(out, sqlite3_value_blob(value), sqlite3_value_bytes(value), LOWER_HEX);
    case 'd':
    case 'z':
    case 'D': {
      if (type != SQLITE_TEXT) break;
      const unsigned char *text = sqlite3_value_text(value);
      sqlite3_int64 length = sqlite3_value_bytes(value);
      /* What the copy writes, and nothing else: `YYYY-MM-DDTHH:MM:SS.fff+00:00`, 3 or 6 fraction digits. */
      sqlite3_int64 end = length - 6;
      if (text == 0 || (end != 23 && end != 26) || memcmp(text + end, "+00:00", 6) != 0 || !isDateText(text, length) || text[10] != 'T' || !isTimeText(text, length, 11) || text[19] != '.' || !isDigitAt(text, 20, end)) break;
      sqlite3_int64 fractionEnd = end;
      while (fractionEnd > 20 && text[fractionEnd - 1] == '0') fractionEnd--;
      int midnight = fractionEnd == 20 && memcmp(text + 11, "00:00:00", 8) == 0;
      if (kind == 'D' && !midnight) break;
      if (!reserve(out, 32)) return 0;
      append(out, text, 10);
      if (kind == 'D') return 1;
      append(out, " ", 1);
      append(out, text + 11, 8);
      if (fractionEnd > 20) append(out, text + 19, fractionEnd - 19);
      if (kind == 'z') append(out, "+00", 3);
      return 1;
    }
  }
  return appendUnexpected(out, value);
}

/*
 * copy_text_line(kinds, key, v1, …, vn): appends the row's line of the migration's checksum
 * (migration/checksum.ts's copyTextLine of the canonical values, one letter per value in `kinds`,
 * see appendCanonicalStored) to the connection's buffer, and notes `key` (the rowid read up to).
 * Returns the buffer once it holds CHUNK_BYTES, like the export functions; export_format_rest()
 * gives the rest, export_format_records() the lines, copy_text_last_key() the last key.
 */
static void copyTextLine(sqlite3_context *context, int argc, sqlite3_value **argv) {
  Export *export = sqlite3_user_data(context);
  Buffer *out = &export->out;
  const char *kinds = (const char *)sqlite3_value_text(argv[0]);
  if (kinds == 0 || (int)strlen(kinds) != argc - 2) {
    sqlite3_result_error(context, "copy_text_line: kinds must have one letter per value", -1);
    return;
  }
  for (int i = 2; i < argc; i++) {
    if (i > 2 && !appendAscii(out, "\t")) goto nomem;
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
      if (!appendAscii(out, "\\N")) goto nomem;
      continue;
    }
    if (!appendCanonicalStored(&export->canonical, argv[i], kinds[i - 2]) || !appendCopyText(out, &export->canonical)) goto nomem;
  }
  if (!appendAscii(out, "\n")) goto nomem;
  export->lastKey = sqlite3_value_int64(argv[1]);
  endRecord(context, export);
  return;
nomem:
  sqlite3_result_error_nomem(context);
}

static void lastKey(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int64(context, ((Export *)sqlite3_user_data(context))->lastKey);
}

static void rest(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  Export *export = sqlite3_user_data(context);
  resultAndEmpty(context, &export->out);
  export->records = 0;
  export->handedOver = 0;
  export->runs.length = 0;
  export->hasOwner = 0;
}

static void records(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int64(context, ((Export *)sqlite3_user_data(context))->records);
}

#ifndef TOOLKIT_SOURCE_SHA256
#define TOOLKIT_SOURCE_SHA256 "unknown"
#endif

static void source(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_text(context, TOOLKIT_SOURCE_SHA256, -1, SQLITE_STATIC);
}

static void runs(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  resultAndEmpty(context, &((Export *)sqlite3_user_data(context))->runs);
}

static void freeExport(void *pointer) {
  Export *export = pointer;
  sqlite3_free(export->out.bytes);
  sqlite3_free(export->runs.bytes);
  sqlite3_free(export->owner.bytes);
  sqlite3_free(export->candidate.bytes);
  sqlite3_free(export->canonical.bytes);
  sqlite3_free(export);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_extension_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api)
  (void)error;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  /* TOOLKIT_PORTABLE_SHA256 (tests) keeps the portable blocks, to compare both on this machine. */
  sha256Blocks = cpuHasSha() && getenv("TOOLKIT_PORTABLE_SHA256") == 0 ? sha256BlockShaNi : sha256Block;
#endif
  Export *export = sqlite3_malloc(sizeof *export);
  if (export == 0) return SQLITE_NOMEM;
  memset(export, 0, sizeof *export);
  /* Not deterministic: each call appends to the buffer, so SQLite must call it once per row. The
     first function owns the state (freed when the connection closes). */
  int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc = sqlite3_create_function_v2(db, "export_csv_record", -1, flags, export, csvRecord, 0, 0, freeExport);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "export_sql_record", -1, flags, export, sqlRecord, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "export_json_record", -1, flags, export, jsonRecord, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "export_format_rest", 0, flags, export, rest, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "export_format_records", 0, flags, export, records, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "export_format_runs", 0, flags, export, runs, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "content_checksum", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, 0, 0, checksumStep, checksumFinal, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "copy_text_insert", 3, flags, 0, copyTextInsert, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "copy_text_line", -1, flags, export, copyTextLine, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "copy_text_last_key", 0, flags, export, lastKey, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "toolkit_extension_source", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC, 0, source, 0, 0, 0);
  return rc;
}
