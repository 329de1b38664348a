/*
 * state_store.h — how state.c stores records and marks, for the state applier
 * (state_apply.c). Inside the engine only; everyone else reads through state.h.
 */
#ifndef TL_ENGINE_STATE_STORE_H
#define TL_ENGINE_STATE_STORE_H

#include "state.h"

/* A record of kind (a u p t m f) by id: 0, TL_ENOTFOUND, or a failure. */
int tl_srec_get(MDB_txn *txn, tl_log *log, char kind, const char *id, void *out, size_t size);
/* The same through w's record cache (projects, messages and users are cached). */
int tl_srec_wget(tl_wtxn *w, char kind, const char *id, void *out, size_t size);
/* Write a record: projects are written back through the cache, the others through. */
int tl_srec_put(tl_wtxn *w, MDB_dbi db, char kind, const char *id, const void *rec, size_t size);
/* Put or delete the mark "kind/a[/b]" (an empty value). */
int tl_smark_put(tl_wtxn *w, MDB_dbi db, char kind, const char *a, const char *b);
int tl_smark_del(tl_wtxn *w, MDB_dbi db, char kind, const char *a, const char *b);
/* The state applier's flush hook: the project records still only in the cache, into LMDB. */
int tl_state_cache_flush(tl_wtxn *w, void *state);
/* snprintf(dst, cap, "%s", src) without printf. */
void tl_copy_cstr(char *dst, size_t cap, const char *src);

#endif
