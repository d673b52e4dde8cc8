
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_api.h"


/*
 * The Logs API, the first resource of the management API (api.c):
 *
 *   GET    .../gateways/{gateway_id}/logs              list
 *   DELETE .../gateways/{gateway_id}/logs              delete by filters
 *   GET    .../gateways/{gateway_id}/logs/{id}         one log
 *   PATCH  .../gateways/{gateway_id}/logs/{id}         feedback, score,
 *                                                      metadata
 *   GET    .../gateways/{gateway_id}/logs/{id}/request   its payloads
 *   GET    .../gateways/{gateway_id}/logs/{id}/response
 *
 * A list or a delete reads the gateway's store in batches of
 * NGX_HTTP_AI_GATEWAY_API_BATCH records in created_at order, each batch
 * in a pool of its own, freed before the next; between two batches the
 * worker goes back to its event loop (a posted event, or Redis's reply),
 * so that a store of millions of records is read without holding the
 * loop for more than a batch.  Each record is decoded, given its PATCHed
 * fields, and matched against the filters and the search:
 *
 *   - ordered by created_at (the default), the page is the matches from
 *     (page - 1) * per_page on, written as they come; the scan goes on to
 *     the end for total_count.  Without filters nor search, the store
 *     skips to the page itself and counts its records (no full scan);
 *   - ordered by anything else, the best page * per_page matches are
 *     kept in a heap (at most NGX_HTTP_AI_GATEWAY_API_MAX_WINDOW), and
 *     the page's records are read again by id at the end.
 *
 * A delete removes what matches, batch by batch (up to "limit"); with a
 * limit and another order, the heap chooses which.
 */


#define NGX_HTTP_AI_GATEWAY_API_BATCH       256
#define NGX_HTTP_AI_GATEWAY_API_MAX_WINDOW  10000


typedef enum {
    NGX_HTTP_AI_GATEWAY_API_SCAN = 0,
    NGX_HTTP_AI_GATEWAY_API_SCANNED,
    NGX_HTTP_AI_GATEWAY_API_YIELD,
    NGX_HTTP_AI_GATEWAY_API_REMOVE,
    NGX_HTTP_AI_GATEWAY_API_REMOVED,
    NGX_HTTP_AI_GATEWAY_API_SORT,
    NGX_HTTP_AI_GATEWAY_API_UNHEAP,
    NGX_HTTP_AI_GATEWAY_API_PAGE,
    NGX_HTTP_AI_GATEWAY_API_GOT,
    NGX_HTTP_AI_GATEWAY_API_END
} ngx_http_ai_gateway_api_state_e;


typedef struct {
    ngx_http_ai_gateway_api_t         *api;
    ngx_http_ai_gateway_log_target_t  *target;
    ngx_http_ai_gateway_api_state_e    state;
    ngx_int_t                          rc;         /* of the store */
    void                              *op;
    ngx_pool_t                        *pool;       /* the batch's */
    ngx_event_t                        next;       /* posted: go on */

    ngx_http_ai_gateway_log_scan_t     scan;
    ngx_uint_t                         skip;       /* still to skip */

    ngx_array_t                       *filters;
    ngx_str_t                         *search;
    ngx_uint_t                         order;
    ngx_uint_t                         matched;
    ngx_uint_t                         from;       /* the page: matches */
    ngx_uint_t                         to;         /* [from, to) */

    ngx_http_ai_gateway_gen_t          gen;        /* the result */

    /* another order: the best kmax matches, the worst at the top */

    ngx_http_ai_gateway_log_sort_t    *heap;
    ngx_uint_t                         nheap;
    ngx_uint_t                         kmax;
    ngx_uint_t                         fetched;
    ngx_http_ai_gateway_log_item_t     item;

    /* a delete */

    ngx_uint_t                         limit;      /* 0: no limit */
    ngx_uint_t                         removed;
    ngx_uint_t                         removing;
    ngx_http_ai_gateway_log_pos_t     *pending;
    ngx_uint_t                         npending;

    unsigned                           remove:1;
    unsigned                           fast:1;
    unsigned                           desc:1;
    unsigned                           sorted:1;
} ngx_http_ai_gateway_api_logs_t;


/* the deprecated query arguments of a list, as filters */

typedef struct {
    const char                    *name;
    ngx_uint_t                     key;
    ngx_uint_t                     op;
} ngx_http_ai_gateway_api_legacy_t;


static ngx_http_ai_gateway_api_legacy_t  ngx_http_ai_gateway_api_legacy[] = {
    { "cached", NGX_HTTP_AI_GATEWAY_LOG_KEY_CACHED,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { "success", NGX_HTTP_AI_GATEWAY_LOG_KEY_SUCCESS,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { "start_date", NGX_HTTP_AI_GATEWAY_LOG_KEY_CREATED_AT,
      NGX_HTTP_AI_GATEWAY_OP_GE },
    { "end_date", NGX_HTTP_AI_GATEWAY_LOG_KEY_CREATED_AT,
      NGX_HTTP_AI_GATEWAY_OP_LE },
    { "min_cost", NGX_HTTP_AI_GATEWAY_LOG_KEY_COST,
      NGX_HTTP_AI_GATEWAY_OP_GE },
    { "max_cost", NGX_HTTP_AI_GATEWAY_LOG_KEY_COST,
      NGX_HTTP_AI_GATEWAY_OP_LE },
    { "min_duration", NGX_HTTP_AI_GATEWAY_LOG_KEY_DURATION,
      NGX_HTTP_AI_GATEWAY_OP_GE },
    { "max_duration", NGX_HTTP_AI_GATEWAY_LOG_KEY_DURATION,
      NGX_HTTP_AI_GATEWAY_OP_LE },
    { "min_tokens_in", NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_IN,
      NGX_HTTP_AI_GATEWAY_OP_GE },
    { "max_tokens_in", NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_IN,
      NGX_HTTP_AI_GATEWAY_OP_LE },
    { "min_tokens_out", NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_OUT,
      NGX_HTTP_AI_GATEWAY_OP_GE },
    { "max_tokens_out", NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_OUT,
      NGX_HTTP_AI_GATEWAY_OP_LE },
    { "min_total_tokens", NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS,
      NGX_HTTP_AI_GATEWAY_OP_GE },
    { "max_total_tokens", NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS,
      NGX_HTTP_AI_GATEWAY_OP_LE },
    { "model", NGX_HTTP_AI_GATEWAY_LOG_KEY_MODEL,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { "model_type", NGX_HTTP_AI_GATEWAY_LOG_KEY_MODEL_TYPE,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { "provider", NGX_HTTP_AI_GATEWAY_LOG_KEY_PROVIDER,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { "request_content_type", NGX_HTTP_AI_GATEWAY_LOG_KEY_REQUEST_CT,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { "response_content_type", NGX_HTTP_AI_GATEWAY_LOG_KEY_RESPONSE_CT,
      NGX_HTTP_AI_GATEWAY_OP_EQ },
    { NULL, 0, 0 }
};


static ngx_http_ai_gateway_api_logs_t *ngx_http_ai_gateway_api_logs_new(
    ngx_http_ai_gateway_api_t *api);
static ngx_int_t ngx_http_ai_gateway_api_logs_legacy(
    ngx_http_ai_gateway_api_t *api);
static ngx_int_t ngx_http_ai_gateway_api_logs_run(
    ngx_http_ai_gateway_api_logs_t *lg);
static ngx_int_t ngx_http_ai_gateway_api_logs_batch(
    ngx_http_ai_gateway_api_logs_t *lg);
static ngx_int_t ngx_http_ai_gateway_api_logs_record(
    ngx_http_ai_gateway_api_logs_t *lg, ngx_http_ai_gateway_log_item_t *item,
    ngx_http_ai_gateway_log_record_t *rec);
static void ngx_http_ai_gateway_api_logs_heap_add(
    ngx_http_ai_gateway_api_logs_t *lg, ngx_http_ai_gateway_log_sort_t *key);
static void ngx_http_ai_gateway_api_logs_heap_down(
    ngx_http_ai_gateway_api_logs_t *lg, ngx_uint_t i, ngx_uint_t n);
static ngx_int_t ngx_http_ai_gateway_api_logs_worse(
    ngx_http_ai_gateway_api_logs_t *lg, ngx_http_ai_gateway_log_sort_t *a,
    ngx_http_ai_gateway_log_sort_t *b);
static void ngx_http_ai_gateway_api_logs_heap_sort(
    ngx_http_ai_gateway_api_logs_t *lg);
static ngx_int_t ngx_http_ai_gateway_api_logs_finish(
    ngx_http_ai_gateway_api_logs_t *lg);
static void ngx_http_ai_gateway_api_logs_stored(void *data, ngx_int_t rc);
static void ngx_http_ai_gateway_api_logs_next(ngx_event_t *ev);
static void ngx_http_ai_gateway_api_logs_cancel(
    ngx_http_ai_gateway_api_t *api);
static ngx_int_t ngx_http_ai_gateway_api_logs_one(
    ngx_http_ai_gateway_api_logs_t *lg);
static void ngx_http_ai_gateway_api_logs_got(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_ai_gateway_api_logs_answer(
    ngx_http_ai_gateway_api_logs_t *lg, ngx_int_t rc);
static ngx_int_t ngx_http_ai_gateway_api_logs_shown(
    ngx_http_ai_gateway_api_logs_t *lg, ngx_int_t rc);
static ngx_uint_t ngx_http_ai_gateway_api_logs_id(ngx_str_t *id);
static void ngx_http_ai_gateway_api_logs_edited(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_ai_gateway_api_logs_change(
    ngx_http_ai_gateway_api_t *api, ngx_http_ai_gateway_log_item_t *change);


/* GET .../logs */

ngx_int_t
ngx_http_ai_gateway_api_logs_list(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_api_logs_t  *lg;

    rc = ngx_http_ai_gateway_api_logs_legacy(api);
    if (rc != NGX_OK) {
        return rc;
    }

    lg = ngx_http_ai_gateway_api_logs_new(api);
    if (lg == NULL) {
        return NGX_ERROR;
    }

    lg->from = (api->page - 1) * api->per_page;
    lg->to = api->page * api->per_page;

    if (lg->order != NGX_HTTP_AI_GATEWAY_LOG_ORDER_CREATED_AT) {

        if (lg->to > NGX_HTTP_AI_GATEWAY_API_MAX_WINDOW) {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "page * per_page must be at most "
                                         "10000 unless ordered by "
                                         "created_at");
            return NGX_OK;
        }

        lg->kmax = lg->to;

    } else if (lg->filters == NULL && lg->search == NULL) {
        /* the store skips to the page, and counts */
        lg->fast = 1;
        lg->skip = lg->from;
    }

    if (ngx_http_ai_gateway_gen_init(&lg->gen, api->request->pool) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_array(&lg->gen);

    return ngx_http_ai_gateway_api_logs_run(lg);
}


/* DELETE .../logs: filters, limit, order_by, order_by_direction */

ngx_int_t
ngx_http_ai_gateway_api_logs_delete(ngx_http_ai_gateway_api_t *api)
{
    ngx_str_t                       *v;
    ngx_int_t                        n;
    ngx_http_ai_gateway_api_logs_t  *lg;

    lg = ngx_http_ai_gateway_api_logs_new(api);
    if (lg == NULL) {
        return NGX_ERROR;
    }

    lg->remove = 1;

    v = ngx_http_ai_gateway_query_arg(&api->args, "limit");

    if (v) {
        n = (v->len && v->len <= 9) ? ngx_atoi(v->data, v->len) : NGX_ERROR;

        if (n < 1) {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "Invalid limit: expected an "
                                         "integer from 1");
            return NGX_OK;
        }

        lg->limit = n;
    }

    if (lg->limit && lg->order != NGX_HTTP_AI_GATEWAY_LOG_ORDER_CREATED_AT) {

        if (lg->limit > NGX_HTTP_AI_GATEWAY_API_MAX_WINDOW) {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "limit must be at most 10000 "
                                         "unless ordered by created_at");
            return NGX_OK;
        }

        lg->kmax = lg->limit;
    }

    lg->pending = ngx_palloc(api->request->pool,
                             NGX_HTTP_AI_GATEWAY_API_BATCH
                             * sizeof(ngx_http_ai_gateway_log_pos_t));
    if (lg->pending == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_api_logs_run(lg);
}


static ngx_http_ai_gateway_api_logs_t *
ngx_http_ai_gateway_api_logs_new(ngx_http_ai_gateway_api_t *api)
{
    ngx_http_request_t              *r;
    ngx_http_ai_gateway_api_logs_t  *lg;

    r = api->request;

    lg = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_api_logs_t));
    if (lg == NULL) {
        return NULL;
    }

    lg->api = api;
    lg->target = api->target;
    lg->filters = api->filters.nelts ? &api->filters : NULL;
    lg->search = (api->search && api->search->len) ? api->search : NULL;
    lg->order = api->order;
    lg->desc = api->desc;

    lg->next.handler = ngx_http_ai_gateway_api_logs_next;
    lg->next.data = lg;
    lg->next.log = r->connection->log;

    api->data = lg;
    api->cancel = ngx_http_ai_gateway_api_logs_cancel;

    return lg;
}


/* cached=true, min_cost=0.01...: filters of the hosted API's older days */

static ngx_int_t
ngx_http_ai_gateway_api_logs_legacy(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t                          rc;
    ngx_str_t                         *v, err, value;
    ngx_http_ai_gateway_api_legacy_t  *l;

    for (l = ngx_http_ai_gateway_api_legacy; l->name; l++) {

        v = ngx_http_ai_gateway_query_arg(&api->args, l->name);

        if (v == NULL) {
            continue;
        }

        value = *v;

        if (value.len == 0) {
            /* an empty argument is no filter, not null */
            continue;
        }

        ngx_str_null(&err);

        rc = ngx_http_ai_gateway_query_add(api->request->pool,
                                           ngx_http_ai_gateway_log_keys,
                                           &api->filters, l->key, l->op,
                                           &value, &err);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            api->status = NGX_HTTP_BAD_REQUEST;
            api->code = NGX_HTTP_AI_GATEWAY_API_INVALID;
            api->message = err;
            return NGX_OK;
        }
    }

    /* feedback=0|1: thumbs down or up */

    v = ngx_http_ai_gateway_query_arg(&api->args, "feedback");

    if (v && v->len) {
        if (v->len == 1 && (v->data[0] == '0' || v->data[0] == '1')) {
            ngx_str_set(&value, "-1");

            if (v->data[0] == '1') {
                ngx_str_set(&value, "1");
            }

        } else {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "Invalid feedback: expected 0 "
                                         "or 1");
            return NGX_OK;
        }

        rc = ngx_http_ai_gateway_query_add(api->request->pool,
                                           ngx_http_ai_gateway_log_keys,
                                           &api->filters,
                                           NGX_HTTP_AI_GATEWAY_LOG_KEY_FEEDBACK,
                                           NGX_HTTP_AI_GATEWAY_OP_EQ,
                                           &value, &err);
        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The list's or delete's steps, run while the store answers at once;
 * NGX_AGAIN when it waits for the store or yields to the event loop,
 * NGX_OK when the answer is in api.
 */

static ngx_int_t
ngx_http_ai_gateway_api_logs_run(ngx_http_ai_gateway_api_logs_t *lg)
{
    ngx_int_t                        rc;
    ngx_http_request_t              *r;
    ngx_http_ai_gateway_log_pos_t   *pos;
    ngx_http_ai_gateway_log_sort_t  *key;
    ngx_http_ai_gateway_log_scan_t  *scan;

    r = lg->api->request;
    scan = &lg->scan;

    for ( ;; ) {

        switch (lg->state) {

        case NGX_HTTP_AI_GATEWAY_API_SCAN:

            if (lg->pool) {
                ngx_destroy_pool(lg->pool);
            }

            lg->pool = ngx_create_pool(16384, r->connection->log);
            if (lg->pool == NULL) {
                return NGX_ERROR;
            }

            /*
             * in created_at order, the direction asked for; into the
             * heap, or deleting all that matches, any direction
             */

            scan->desc = lg->desc;
            scan->skip = lg->skip;
            scan->n = lg->fast ? lg->api->per_page
                               : NGX_HTTP_AI_GATEWAY_API_BATCH;

            lg->state = NGX_HTTP_AI_GATEWAY_API_SCANNED;

            rc = lg->target->store->scan(lg->target, scan, lg->pool,
                                         ngx_http_ai_gateway_api_logs_stored,
                                         lg, &lg->op, r->connection->log);
            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            lg->rc = rc;
            break;

        case NGX_HTTP_AI_GATEWAY_API_SCANNED:

            if (lg->rc != NGX_OK) {
                return ngx_http_ai_gateway_api_logs_answer(lg, NGX_ERROR);
            }

            rc = ngx_http_ai_gateway_api_logs_batch(lg);
            if (rc != NGX_OK) {
                return rc;
            }

            if (lg->npending) {
                lg->state = NGX_HTTP_AI_GATEWAY_API_REMOVE;

            } else if (!scan->end) {
                lg->state = NGX_HTTP_AI_GATEWAY_API_YIELD;

            } else {
                lg->state = lg->kmax ? NGX_HTTP_AI_GATEWAY_API_SORT
                                     : NGX_HTTP_AI_GATEWAY_API_END;
            }

            break;

        case NGX_HTTP_AI_GATEWAY_API_YIELD:

            /* the event loop's turn between two batches */

            lg->state = NGX_HTTP_AI_GATEWAY_API_SCAN;
            ngx_post_event(&lg->next, &ngx_posted_events);

            return NGX_AGAIN;

        case NGX_HTTP_AI_GATEWAY_API_REMOVE:

            lg->state = NGX_HTTP_AI_GATEWAY_API_REMOVED;

            rc = lg->target->store->remove(lg->target, lg->pending,
                                         lg->npending, &lg->removing,
                                         lg->pool,
                                         ngx_http_ai_gateway_api_logs_stored,
                                         lg, &lg->op, r->connection->log);
            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            lg->rc = rc;
            break;

        case NGX_HTTP_AI_GATEWAY_API_REMOVED:

            if (lg->rc != NGX_OK) {
                return ngx_http_ai_gateway_api_logs_answer(lg, NGX_ERROR);
            }

            lg->removed += lg->removing;
            lg->npending = 0;

            if (lg->sorted) {
                lg->state = NGX_HTTP_AI_GATEWAY_API_UNHEAP;

            } else if (scan->end
                       || (lg->limit && lg->removed >= lg->limit))
            {
                lg->state = NGX_HTTP_AI_GATEWAY_API_END;

            } else {
                lg->state = NGX_HTTP_AI_GATEWAY_API_YIELD;
            }

            break;

        case NGX_HTTP_AI_GATEWAY_API_SORT:

            /* the heap is complete: the page, or what to remove */

            ngx_http_ai_gateway_api_logs_heap_sort(lg);
            lg->sorted = 1;

            lg->state = lg->remove ? NGX_HTTP_AI_GATEWAY_API_UNHEAP
                                   : NGX_HTTP_AI_GATEWAY_API_PAGE;
            break;

        case NGX_HTTP_AI_GATEWAY_API_UNHEAP:

            /* the heap's records removed, a batch at a time */

            if (lg->nheap == 0) {
                lg->state = NGX_HTTP_AI_GATEWAY_API_END;
                break;
            }

            if (lg->pool == NULL) {
                lg->pool = ngx_create_pool(16384, r->connection->log);
                if (lg->pool == NULL) {
                    return NGX_ERROR;
                }
            }

            while (lg->nheap
                   && lg->npending < NGX_HTTP_AI_GATEWAY_API_BATCH)
            {
                key = &lg->heap[--lg->nheap];
                pos = &lg->pending[lg->npending++];

                pos->created_at = key->created_at;
                ngx_memcpy(pos->id, key->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
            }

            lg->state = NGX_HTTP_AI_GATEWAY_API_REMOVE;
            break;

        case NGX_HTTP_AI_GATEWAY_API_PAGE:

            if (lg->from + lg->fetched >= ngx_min(lg->to, lg->nheap)) {
                lg->state = NGX_HTTP_AI_GATEWAY_API_END;
                break;
            }

            lg->state = NGX_HTTP_AI_GATEWAY_API_GOT;

            rc = lg->target->store->get(lg->target,
                                        lg->heap[lg->from + lg->fetched].id,
                                        NGX_HTTP_AI_GATEWAY_LOG_NO_BODY,
                                        &lg->item, lg->pool,
                                        ngx_http_ai_gateway_api_logs_stored,
                                        lg, &lg->op, r->connection->log);
            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            lg->rc = rc;
            break;

        case NGX_HTTP_AI_GATEWAY_API_GOT:

            if (lg->rc == NGX_ERROR) {
                return ngx_http_ai_gateway_api_logs_answer(lg, NGX_ERROR);
            }

            if (lg->rc == NGX_OK) {
                /* gone meanwhile: NGX_DECLINED, left out */
                rc = ngx_http_ai_gateway_api_logs_one(lg);
                if (rc != NGX_OK) {
                    return rc;
                }
            }

            lg->fetched++;
            lg->state = NGX_HTTP_AI_GATEWAY_API_PAGE;
            break;

        default: /* NGX_HTTP_AI_GATEWAY_API_END */

            return ngx_http_ai_gateway_api_logs_finish(lg);
        }
    }
}


/* one batch of records from the store */

static ngx_int_t
ngx_http_ai_gateway_api_logs_batch(ngx_http_ai_gateway_api_logs_t *lg)
{
    ngx_int_t                          rc;
    ngx_uint_t                         i;
    ngx_http_ai_gateway_log_scan_t    *scan;
    ngx_http_ai_gateway_log_item_t    *items;
    ngx_http_ai_gateway_log_record_t   rec;
    ngx_http_ai_gateway_log_sort_t     key;

    scan = &lg->scan;

    if (lg->fast) {
        lg->api->total = scan->total;

        if (scan->skipped < scan->skip) {
            /* a store skips a bounded number at a time */

            lg->skip -= scan->skipped;
            scan->cursor = scan->last;
            scan->set = 1;

            if (scan->end) {
                lg->skip = 0;
            }

            return NGX_OK;
        }

        lg->skip = 0;
    }

    items = scan->items.elts;

    for (i = 0; i < scan->items.nelts; i++) {

        rc = ngx_http_ai_gateway_api_logs_record(lg, &items[i], &rec);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return rc;
        }

        if (lg->kmax) {
            ngx_http_ai_gateway_log_sort_key(&rec, lg->order, &key);
            ngx_http_ai_gateway_api_logs_heap_add(lg, &key);
            lg->matched++;
            continue;
        }

        if (lg->remove) {
            if (lg->limit && lg->removed + lg->npending >= lg->limit) {
                break;
            }

            lg->pending[lg->npending].created_at = rec.created_at;
            ngx_memcpy(lg->pending[lg->npending].id, rec.id,
                       NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
            lg->npending++;
            continue;
        }

        if (lg->fast || (lg->matched >= lg->from && lg->matched < lg->to)) {
            if (ngx_http_ai_gateway_log_json(&lg->gen, &rec, 0) != NGX_OK) {
                return NGX_ERROR;
            }

            lg->api->count++;
        }

        lg->matched++;
    }

    if (lg->fast) {
        /* the page is all there is to read */
        scan->end = 1;
    }

    if (!scan->end) {
        scan->cursor = scan->last;
        scan->set = 1;
    }

    return NGX_OK;
}


/*
 * A record of a batch, decoded: NGX_DECLINED when it is not one (gone,
 * or bytes of something else) or does not match.
 */

static ngx_int_t
ngx_http_ai_gateway_api_logs_record(ngx_http_ai_gateway_api_logs_t *lg,
    ngx_http_ai_gateway_log_item_t *item,
    ngx_http_ai_gateway_log_record_t *rec)
{
    if (!item->found
        || ngx_http_ai_gateway_log_decode(item->rec.data, item->rec.len, rec)
           != NGX_OK
        || ngx_http_ai_gateway_log_override(rec, &item->feedback,
                                            &item->score, &item->metadata)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (lg->fast) {
        return NGX_OK;
    }

    if (!ngx_http_ai_gateway_log_match(lg->pool, rec, lg->filters,
                                       lg->search))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The heap of the best kmax matches in the order asked for: the worst of
 * them at the top, replaced by a better one.
 */

static ngx_int_t
ngx_http_ai_gateway_api_logs_worse(ngx_http_ai_gateway_api_logs_t *lg,
    ngx_http_ai_gateway_log_sort_t *a, ngx_http_ai_gateway_log_sort_t *b)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_log_sort_cmp(a, b, lg->order);

    /* descending: the smaller is the worse */

    return lg->desc ? rc < 0 : rc > 0;
}


static void
ngx_http_ai_gateway_api_logs_heap_add(ngx_http_ai_gateway_api_logs_t *lg,
    ngx_http_ai_gateway_log_sort_t *key)
{
    ngx_uint_t                       i, parent;
    ngx_http_ai_gateway_log_sort_t   tmp;

    if (lg->heap == NULL) {
        lg->heap = ngx_palloc(lg->api->request->pool,
                              lg->kmax
                              * sizeof(ngx_http_ai_gateway_log_sort_t));
        if (lg->heap == NULL) {
            return;
        }
    }

    if (lg->nheap < lg->kmax) {
        i = lg->nheap++;
        lg->heap[i] = *key;

        while (i > 0) {
            parent = (i - 1) / 2;

            if (!ngx_http_ai_gateway_api_logs_worse(lg, &lg->heap[i],
                                                     &lg->heap[parent]))
            {
                break;
            }

            tmp = lg->heap[i];
            lg->heap[i] = lg->heap[parent];
            lg->heap[parent] = tmp;
            i = parent;
        }

        return;
    }

    if (!ngx_http_ai_gateway_api_logs_worse(lg, &lg->heap[0], key)) {
        return;
    }

    lg->heap[0] = *key;

    ngx_http_ai_gateway_api_logs_heap_down(lg, 0, lg->nheap);
}


static void
ngx_http_ai_gateway_api_logs_heap_down(ngx_http_ai_gateway_api_logs_t *lg,
    ngx_uint_t i, ngx_uint_t n)
{
    ngx_uint_t                       l, w;
    ngx_http_ai_gateway_log_sort_t   tmp;

    for ( ;; ) {
        l = 2 * i + 1;
        w = i;

        if (l < n && ngx_http_ai_gateway_api_logs_worse(lg, &lg->heap[l],
                                                         &lg->heap[w]))
        {
            w = l;
        }

        if (l + 1 < n
            && ngx_http_ai_gateway_api_logs_worse(lg, &lg->heap[l + 1],
                                                  &lg->heap[w]))
        {
            w = l + 1;
        }

        if (w == i) {
            return;
        }

        tmp = lg->heap[i];
        lg->heap[i] = lg->heap[w];
        lg->heap[w] = tmp;
        i = w;
    }
}


/* in place, the best first: the worst goes to the end, and so on */

static void
ngx_http_ai_gateway_api_logs_heap_sort(ngx_http_ai_gateway_api_logs_t *lg)
{
    ngx_uint_t                       n;
    ngx_http_ai_gateway_log_sort_t   tmp;

    for (n = lg->nheap; n > 1; n--) {
        tmp = lg->heap[0];
        lg->heap[0] = lg->heap[n - 1];
        lg->heap[n - 1] = tmp;

        ngx_http_ai_gateway_api_logs_heap_down(lg, 0, n - 1);
    }
}


/* a record read again by id, for a page in another order */

static ngx_int_t
ngx_http_ai_gateway_api_logs_one(ngx_http_ai_gateway_api_logs_t *lg)
{
    ngx_http_ai_gateway_log_record_t  rec;

    if (ngx_http_ai_gateway_log_decode(lg->item.rec.data, lg->item.rec.len,
                                       &rec)
        != NGX_OK
        || ngx_http_ai_gateway_log_override(&rec, &lg->item.feedback,
                                            &lg->item.score,
                                            &lg->item.metadata)
           != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_log_json(&lg->gen, &rec, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    lg->api->count++;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_api_logs_finish(ngx_http_ai_gateway_api_logs_t *lg)
{
    u_char                     *p;
    ngx_http_ai_gateway_api_t  *api;

    api = lg->api;

    if (lg->pool) {
        ngx_destroy_pool(lg->pool);
        lg->pool = NULL;
    }

    if (lg->remove) {
        p = ngx_pnalloc(api->request->pool,
                        sizeof("{\"deleted\":}") + NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        api->result.data = p;
        api->result.len = ngx_sprintf(p, "{\"deleted\":%ui}", lg->removed)
                          - p;
        return NGX_OK;
    }

    if (!lg->fast) {
        api->total = lg->matched;
    }

    api->info = 1;

    ngx_http_ai_gateway_gen_array_end(&lg->gen);

    return (ngx_http_ai_gateway_gen_done(&lg->gen, &api->result) == NGX_OK)
           ? NGX_OK : NGX_ERROR;
}


/* the store answered a list's or delete's step */

static void
ngx_http_ai_gateway_api_logs_stored(void *data, ngx_int_t rc)
{
    ngx_http_ai_gateway_api_logs_t *lg = data;

    lg->op = NULL;
    lg->rc = rc;

    rc = ngx_http_ai_gateway_api_logs_run(lg);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_ai_gateway_api_fail(lg->api, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     NGX_HTTP_AI_GATEWAY_API_INTERNAL,
                                     "Internal error");
    }

    lg->api->done(lg->api);
}


static void
ngx_http_ai_gateway_api_logs_next(ngx_event_t *ev)
{
    ngx_http_ai_gateway_api_logs_t *lg = ev->data;

    ngx_http_ai_gateway_api_logs_stored(lg, lg->rc);
}


/*
 * The request ends (answered, failed, or its client left): the store's
 * wait, the posted event and the batch's pool go.
 */

static void
ngx_http_ai_gateway_api_logs_cancel(ngx_http_ai_gateway_api_t *api)
{
    ngx_http_ai_gateway_api_logs_t *lg = api->data;

    if (lg->op && lg->target->store->cancel) {
        lg->target->store->cancel(lg->op);
        lg->op = NULL;
    }

    if (lg->next.posted) {
        ngx_delete_posted_event(&lg->next);
    }

    if (lg->pool) {
        ngx_destroy_pool(lg->pool);
        lg->pool = NULL;
    }
}


/* a store's error, as the API says it */

static ngx_int_t
ngx_http_ai_gateway_api_logs_answer(ngx_http_ai_gateway_api_logs_t *lg,
    ngx_int_t rc)
{
    if (lg->pool) {
        ngx_destroy_pool(lg->pool);
        lg->pool = NULL;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_ai_gateway_api_fail(lg->api, NGX_HTTP_NOT_FOUND,
                                     NGX_HTTP_AI_GATEWAY_API_NOT_FOUND,
                                     "Log not found");
        return NGX_OK;
    }

    ngx_http_ai_gateway_api_fail(lg->api, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 NGX_HTTP_AI_GATEWAY_API_UNAVAILABLE,
                                 "The log store is unavailable");
    return NGX_OK;
}


/* a log id: 26 characters of Crockford's base32 */

static ngx_uint_t
ngx_http_ai_gateway_api_logs_id(ngx_str_t *id)
{
    ngx_uint_t  i;

    if (id->len != NGX_HTTP_AI_GATEWAY_LOG_ID_LEN) {
        return 0;
    }

    for (i = 0; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'A' && id->data[i] <= 'Z')))
        {
            return 0;
        }
    }

    return 1;
}


/* GET .../logs/{id}, and its /request and /response */

ngx_int_t
ngx_http_ai_gateway_api_logs_get(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_api_logs_t  *lg;

    if (!ngx_http_ai_gateway_api_logs_id(&api->id)) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_FOUND,
                                     NGX_HTTP_AI_GATEWAY_API_NOT_FOUND,
                                     "Log not found");
        return NGX_OK;
    }

    lg = ngx_http_ai_gateway_api_logs_new(api);
    if (lg == NULL) {
        return NGX_ERROR;
    }

    rc = lg->target->store->get(lg->target, api->id.data,
                                api->resource->what, &lg->item,
                                api->request->pool,
                                ngx_http_ai_gateway_api_logs_got, lg,
                                &lg->op, api->request->connection->log);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_ai_gateway_api_logs_shown(lg, rc);
}


ngx_int_t
ngx_http_ai_gateway_api_logs_payload(ngx_http_ai_gateway_api_t *api)
{
    return ngx_http_ai_gateway_api_logs_get(api);
}


static void
ngx_http_ai_gateway_api_logs_got(void *data, ngx_int_t rc)
{
    ngx_http_ai_gateway_api_logs_t *lg = data;

    lg->op = NULL;

    if (ngx_http_ai_gateway_api_logs_shown(lg, rc) != NGX_OK) {
        ngx_http_ai_gateway_api_fail(lg->api, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     NGX_HTTP_AI_GATEWAY_API_INTERNAL,
                                     "Internal error");
    }

    lg->api->done(lg->api);
}


/* one log: its object, or the payload asked for */

static ngx_int_t
ngx_http_ai_gateway_api_logs_shown(ngx_http_ai_gateway_api_logs_t *lg,
    ngx_int_t rc)
{
    ngx_str_t                          *ct;
    uint32_t                            body, cut;
    ngx_http_ai_gateway_api_t          *api;
    ngx_http_ai_gateway_gen_t           gen;
    ngx_http_ai_gateway_log_record_t    rec;

    api = lg->api;

    if (rc != NGX_OK) {
        return ngx_http_ai_gateway_api_logs_answer(lg, rc);
    }

    if (ngx_http_ai_gateway_log_decode(lg->item.rec.data, lg->item.rec.len,
                                       &rec)
        != NGX_OK
        || ngx_http_ai_gateway_log_override(&rec, &lg->item.feedback,
                                            &lg->item.score,
                                            &lg->item.metadata)
           != NGX_OK)
    {
        return ngx_http_ai_gateway_api_logs_answer(lg, NGX_DECLINED);
    }

    if (api->resource->what == NGX_HTTP_AI_GATEWAY_LOG_NO_BODY) {
        if (ngx_http_ai_gateway_gen_init(&gen, api->request->pool) != NGX_OK
            || ngx_http_ai_gateway_log_json(&gen, &rec, 1) != NGX_OK
            || ngx_http_ai_gateway_gen_done(&gen, &api->result) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (api->resource->what == NGX_HTTP_AI_GATEWAY_LOG_REQUEST) {
        body = NGX_HTTP_AI_GATEWAY_LOG_REQUEST_BODY;
        cut = NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CUT;
        ct = &rec.str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CT];

    } else {
        body = NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_BODY;
        cut = NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CUT;
        ct = &rec.str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CT];
    }

    if (!(rec.flags & body)) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_FOUND,
                                     NGX_HTTP_AI_GATEWAY_API_NOT_FOUND,
                                     "No payload was kept for this log");
        return NGX_OK;
    }

    api->is_raw = 1;
    api->raw = lg->item.body;

    if (api->raw.data == NULL) {
        ngx_str_set(&api->raw, "");
    }

    /*
     * a payload kept in part is no longer what its type says; the type,
     * from a client or a provider, goes into a response header: checked
     */

    if ((rec.flags & cut) || ct->len == 0 || ct->len > 256
        || ngx_http_ai_gateway_check_value(ct->data, ct->len) != NGX_OK)
    {
        if (rec.flags & cut) {
            ngx_str_set(&api->content_type, "text/plain; charset=utf-8");

        } else {
            ngx_str_set(&api->content_type, "application/octet-stream");
        }

    } else {
        api->content_type = *ct;
    }

    return NGX_OK;
}


/* PATCH .../logs/{id}: {"feedback", "score", "metadata"} */

ngx_int_t
ngx_http_ai_gateway_api_logs_edit(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_api_logs_t  *lg;
    ngx_http_ai_gateway_log_item_t   change;

    if (!ngx_http_ai_gateway_api_logs_id(&api->id)) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_FOUND,
                                     NGX_HTTP_AI_GATEWAY_API_NOT_FOUND,
                                     "Log not found");
        return NGX_OK;
    }

    rc = ngx_http_ai_gateway_api_logs_change(api, &change);

    if (rc != NGX_OK || api->code) {
        return rc;
    }

    lg = ngx_http_ai_gateway_api_logs_new(api);
    if (lg == NULL) {
        return NGX_ERROR;
    }

    rc = lg->target->store->patch(lg->target, api->id.data, &change,
                                  api->request->pool,
                                  ngx_http_ai_gateway_api_logs_edited, lg,
                                  &lg->op, api->request->connection->log);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return (rc == NGX_OK) ? NGX_OK
                          : ngx_http_ai_gateway_api_logs_answer(lg, rc);
}


static void
ngx_http_ai_gateway_api_logs_edited(void *data, ngx_int_t rc)
{
    ngx_http_ai_gateway_api_logs_t *lg = data;

    lg->op = NULL;

    if (rc != NGX_OK) {
        (void) ngx_http_ai_gateway_api_logs_answer(lg, rc);
    }

    lg->api->done(lg->api);
}


/*
 * The body of a PATCH: feedback -1, 0 (not evaluated) or 1, or null (0);
 * score 0 to 100, or null (none); metadata an object of at most five
 * string, number or boolean values, or null.  Each absent one is let be.
 */

static ngx_int_t
ngx_http_ai_gateway_api_logs_change(ngx_http_ai_gateway_api_t *api,
    ngx_http_ai_gateway_log_item_t *change)
{
    u_char              *p;
    yajl_val             v, f;
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = api->request;

    ngx_memzero(change, sizeof(ngx_http_ai_gateway_log_item_t));

    rc = ngx_http_ai_gateway_json_parse(r->pool, api->body.data,
                                        api->body.len, &v);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK || !YAJL_IS_OBJECT(v)) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Invalid body: expected a JSON object");
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    f = ngx_http_ai_gateway_json_get(v, "feedback");

    if (f) {
        if (YAJL_IS_NULL(f)) {
            ngx_str_set(&change->feedback, "0");

        } else if (YAJL_IS_INTEGER(f) && f->u.number.i >= -1
                   && f->u.number.i <= 1)
        {
            change->feedback.data = p;
            change->feedback.len = ngx_sprintf(p, "%i",
                                               (ngx_int_t) f->u.number.i)
                                   - p;
            p += NGX_INT_T_LEN;

        } else {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "Invalid feedback: expected -1, 0 "
                                         "or 1");
            return NGX_OK;
        }
    }

    f = ngx_http_ai_gateway_json_get(v, "score");

    if (f) {
        if (YAJL_IS_NULL(f)) {
            ngx_str_set(&change->score, "");

        } else if (YAJL_IS_INTEGER(f) && f->u.number.i >= 0
                   && f->u.number.i <= 100)
        {
            change->score.data = p;
            change->score.len = ngx_sprintf(p, "%i",
                                            (ngx_int_t) f->u.number.i)
                                - p;

        } else {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "Invalid score: expected an "
                                         "integer from 0 to 100");
            return NGX_OK;
        }
    }

    f = ngx_http_ai_gateway_json_get(v, "metadata");

    if (f) {
        rc = ngx_http_ai_gateway_log_metadata(r->pool, f, &change->metadata);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "Invalid metadata: expected an "
                                         "object of string, number or "
                                         "boolean values, or null");
            return NGX_OK;
        }
    }

    return NGX_OK;
}
