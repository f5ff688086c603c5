/* bp-pg-types.h: PostgreSQL text values to GVariant, JSON and CSV, and
 * GVariant parameters to libpq text parameters
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

/* Built-in type OIDs (pg_type.dat, PostgreSQL 15) this module knows. */
#define BP_PG_OID_BOOL         16
#define BP_PG_OID_BYTEA        17
#define BP_PG_OID_CHAR         18
#define BP_PG_OID_NAME         19
#define BP_PG_OID_INT8         20
#define BP_PG_OID_INT2         21
#define BP_PG_OID_INT4         23
#define BP_PG_OID_TEXT         25
#define BP_PG_OID_OID          26
#define BP_PG_OID_JSON         114
#define BP_PG_OID_FLOAT4       700
#define BP_PG_OID_FLOAT8       701
#define BP_PG_OID_UNKNOWN      705
#define BP_PG_OID_BPCHAR       1042
#define BP_PG_OID_VARCHAR      1043
#define BP_PG_OID_DATE         1082
#define BP_PG_OID_TIME         1083
#define BP_PG_OID_TIMESTAMP    1114
#define BP_PG_OID_TIMESTAMPTZ  1184
#define BP_PG_OID_INTERVAL     1186
#define BP_PG_OID_TIMETZ       1266
#define BP_PG_OID_NUMERIC      1700
#define BP_PG_OID_UUID         2950
#define BP_PG_OID_JSONB        3802
#define BP_PG_OID_BOOL_ARRAY   1000
#define BP_PG_OID_BYTEA_ARRAY  1001
#define BP_PG_OID_INT2_ARRAY   1005
#define BP_PG_OID_INT4_ARRAY   1007
#define BP_PG_OID_TEXT_ARRAY   1009
#define BP_PG_OID_INT8_ARRAY   1016
#define BP_PG_OID_FLOAT8_ARRAY 1022
#define BP_PG_OID_NUMERIC_ARRAY 1231

/* PostgreSQL's MAXDIM: arrays nest at most this deep. */
#define BP_PG_ARRAY_MAX_DEPTH 6

/**
 * BpPgKind:
 *
 * How a value of a column type is decoded.
 */
typedef enum
{
  BP_PG_KIND_TEXT,     /* s: text, varchar, dates and times, uuid, unknown types */
  BP_PG_KIND_BOOL,     /* b */
  BP_PG_KIND_INT16,    /* i */
  BP_PG_KIND_INT32,    /* i */
  BP_PG_KIND_INT64,    /* x */
  BP_PG_KIND_OID,      /* u */
  BP_PG_KIND_FLOAT,    /* d */
  BP_PG_KIND_NUMERIC,  /* s, exact text */
  BP_PG_KIND_BYTEA,    /* ay */
  BP_PG_KIND_JSON,     /* s, JSON text */
  BP_PG_KIND_ARRAY,    /* av, NULL elements as <@o '/'> */
} BpPgKind;

BpPgKind    bp_pg_type_get_kind          (Oid            type,
                                          Oid           *out_elem_type);
char       *bp_pg_type_dup_name          (Oid            type);

GVariant   *bp_pg_value_to_variant       (Oid            type,
                                          const char    *text,
                                          gsize          len,
                                          GError       **error);
GVariant   *bp_pg_array_parse            (const char    *text,
                                          gsize          len,
                                          Oid            elem_type,
                                          GError       **error);
GBytes     *bp_pg_bytea_decode           (const char    *text,
                                          gsize          len,
                                          GError       **error);

void        bp_pg_json_append_string     (GString       *out,
                                          const char    *str,
                                          gssize         len);
gboolean    bp_pg_json_append_value      (GString       *out,
                                          Oid            type,
                                          const char    *text,
                                          gsize          len,
                                          GError       **error);
void        bp_pg_csv_append_field       (GString       *out,
                                          const char    *text,
                                          gsize          len);

/**
 * BpPgRowDesc:
 *
 * The shape of a result set: column names, unique row keys ("#2", "#3"
 * for repeated names), type OIDs and type names. Computed once per result
 * set and reused for every row (single-row mode gives one PGresult a row).
 */
typedef struct _BpPgRowDesc BpPgRowDesc;

BpPgRowDesc *bp_pg_row_desc_new          (const PGresult    *res);
BpPgRowDesc *bp_pg_row_desc_copy         (const BpPgRowDesc *self);
void         bp_pg_row_desc_free         (BpPgRowDesc       *self);
guint        bp_pg_row_desc_get_n_columns (const BpPgRowDesc *self);
const char  *bp_pg_row_desc_get_name     (const BpPgRowDesc *self,
                                          guint              column);
const char  *bp_pg_row_desc_get_key      (const BpPgRowDesc *self,
                                          guint              column);
const char  *bp_pg_row_desc_get_type_name (const BpPgRowDesc *self,
                                          guint              column);
Oid          bp_pg_row_desc_get_type     (const BpPgRowDesc *self,
                                          guint              column);
GVariant    *bp_pg_row_desc_to_columns   (const BpPgRowDesc *self);
void         bp_pg_row_desc_append_json_columns (const BpPgRowDesc *self,
                                                 GString           *out);
void         bp_pg_row_desc_append_csv_header (const BpPgRowDesc *self,
                                               GString           *out);

GVariant    *bp_pg_row_to_variant        (const BpPgRowDesc *desc,
                                          const PGresult    *res,
                                          int                row,
                                          GError           **error);
gboolean     bp_pg_row_append_json       (const BpPgRowDesc *desc,
                                          const PGresult    *res,
                                          int                row,
                                          GString           *out,
                                          GError           **error);
void         bp_pg_row_append_csv        (const BpPgRowDesc *desc,
                                          const PGresult    *res,
                                          int                row,
                                          GString           *out);

/**
 * BpPgParams:
 * @n: number of parameters
 * @types: parameter type OIDs (0 lets the server infer)
 * @values: parameter values, %NULL for SQL NULL
 * @lengths: value lengths (used for binary parameters)
 * @formats: 0 text, 1 binary
 *
 * Parameters ready for PQsendQueryParams().
 */
typedef struct
{
  int    n;
  Oid   *types;
  char **values;
  int   *lengths;
  int   *formats;
} BpPgParams;

BpPgParams  *bp_pg_params_new            (GVariant      *params,
                                          GError       **error);
void         bp_pg_params_free           (BpPgParams    *self);
int          bp_pg_sql_count_params      (const char    *sql);
gboolean     bp_pg_params_check_count    (const char    *sql,
                                          guint          n_given,
                                          GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpPgRowDesc, bp_pg_row_desc_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpPgParams, bp_pg_params_free)

G_END_DECLS
