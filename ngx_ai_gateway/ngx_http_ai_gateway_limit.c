
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_limit.h"


/*
 * Rate limits: the directives, the limit stage of the driver and the
 * charging of tokens.
 *
 * A location's "ai_gateway_limit" directives (inherited from the level
 * above when it has none, as limit_req's) each count requests or tokens
 * per interval, fixed (clock-aligned windows) or sliding (at most N in
 * the last interval), per gateway or per key (any complex value), in an
 * "ai_gateway_limit_zone" (ngx_http_ai_gateway_limit_shm.c).
 *
 * The stage runs in the driver after the cache lookup missed and before
 * the credential and upstream stages: a cache hit is never counted.  A
 * request is checked and counted once: its retries and Universal Endpoint
 * steps are subrequests (attempts) that come to this stage each, and the
 * first one to come makes the check, whose result is kept in the main
 * request's context; the others pass, or are refused, by it.  All limits
 * are first looked at without counting, then the request limits count the
 * request: a request refused by one limit is counted by none (but for a
 * race between workers between the two steps, when several limits apply).
 *
 * Token limits are checked before the request (refused once the window's
 * tokens are used up) and charged after it, in the log phase, with the
 * counts the provider reported (ctx->usage of the request and each of its
 * attempts that passed this stage); a request whose counts are unknown
 * charges nothing.
 *
 * A refusal is 429 with code 2003 ("Rate limited"); with
 * "ai_gateway_limit_headers on" the response carries RateLimit-Limit,
 * RateLimit-Remaining and RateLimit-Reset of the nearest limit, and a
 * refusal Retry-After, all numbers formatted here.
 */


struct ngx_http_ai_gateway_limit_part_s {
    ngx_array_t                   *limits;     /* the location's */
    ngx_str_t                     *keys;       /* per limit; len 0: none */
    ngx_array_t                    passed;     /* ctx *: went on */
    ngx_http_ai_gateway_limit_t   *refused;
    uint64_t                       limit;      /* the nearest limit's */
    uint64_t                       remaining;
    ngx_msec_t                     reset;
    uint64_t                       spend;      /* the nearest spend rule's
                                                  budget left, nano-USD */

    /* the check in progress: where it stands, a Redis wait */
    ngx_http_request_t            *request;    /* that checks */
    uint64_t                       now;
    ngx_uint_t                     pass;
    ngx_uint_t                     i;
    void                          *op;
    ngx_http_ai_gateway_limit_res_t  res;

    unsigned                       started:1;
    unsigned                       checked:1;
    unsigned                       known:1;    /* limit, remaining, reset */
    unsigned                       spend_known:1;
    unsigned                       charged:1;
    unsigned                       waiting:1;  /* for Redis */
    unsigned                       answered:1; /* Redis answered: res */
    unsigned                       failed:1;   /* Redis failed */
    unsigned                       cleanup:1;
    unsigned                       single:1;   /* one limit applies */
};


static ngx_int_t ngx_http_ai_gateway_limit_keys(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_limit_part_t *lp);
static uint64_t ngx_http_ai_gateway_limit_now(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_conf_t *lcf);
static ngx_int_t ngx_http_ai_gateway_limit_refuse(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_limit_conf_t *lcf,
    ngx_http_ai_gateway_limit_part_t *lp);
static ngx_int_t ngx_http_ai_gateway_limit_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_part_t *lp);
static ngx_int_t ngx_http_ai_gateway_limit_header(ngx_http_request_t *r,
    char *name, uint64_t n);
static ngx_int_t ngx_http_ai_gateway_limit_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_limit_ask(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_part_t *lp, ngx_http_ai_gateway_limit_t *lim,
    ngx_uint_t op, ngx_http_ai_gateway_limit_res_t *res);
static void ngx_http_ai_gateway_limit_answered(void *data,
    ngx_http_ai_gateway_limit_res_t *res);
static void ngx_http_ai_gateway_limit_policy(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_t *lim, ngx_http_ai_gateway_limit_res_t *res);
static void ngx_http_ai_gateway_limit_cleanup(void *data);
static ngx_int_t ngx_http_ai_gateway_limit_dollars(ngx_str_t *s,
    uint64_t *nano);
static ngx_array_t *ngx_http_ai_gateway_limit_list(ngx_conf_t *cf,
    ngx_str_t *s);
static ngx_int_t ngx_http_ai_gateway_limit_applies(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_limit_t *lim);
static void ngx_http_ai_gateway_limit_model(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_uint_t ngx_http_ai_gateway_limit_in(ngx_array_t *list,
    ngx_str_t *v);
static u_char *ngx_http_ai_gateway_limit_printable(u_char *p, u_char *last,
    ngx_str_t *s);


/* a failure of Redis is logged at most once per this many seconds */
#define NGX_HTTP_AI_GATEWAY_LIMIT_LOG_INTERVAL  10

static time_t  ngx_http_ai_gateway_limit_logged;


/* ai_gateway_limit_clock is for tests: nginx must run with this set */
#define NGX_HTTP_AI_GATEWAY_LIMIT_CLOCK_ENV  "AI_GATEWAY_TEST_CLOCK"


ngx_http_ai_gateway_limit_conf_t *
ngx_http_ai_gateway_limit_create_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_limit_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_limit_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->limits = NGX_CONF_UNSET_PTR;
    lcf->headers = NGX_CONF_UNSET;
    lcf->clock = NGX_CONF_UNSET_PTR;

    return lcf;
}


char *
ngx_http_ai_gateway_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_limit_conf_t *prev,
    ngx_http_ai_gateway_limit_conf_t *conf)
{
    ngx_conf_merge_ptr_value(conf->limits, prev->limits, NULL);
    ngx_conf_merge_value(conf->headers, prev->headers, 0);
    ngx_conf_merge_ptr_value(conf->clock, prev->clock, NULL);

    return NGX_CONF_OK;
}


/*
 * ai_gateway_limit zone=name requests=N | tokens=N [count=total|input|
 *     output] interval=time [technique=fixed|sliding] [key=value]
 *     [name=id];
 */

char *
ngx_http_ai_gateway_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char                            *p;
    ngx_int_t                          n;
    ngx_str_t                         *value, s, zone;
    ngx_uint_t                         i, j, kinds;
    ngx_uint_t                         technique;
    ngx_array_t                       *list;
    ngx_http_ai_gateway_limit_t       *lim, *l;
    ngx_http_ai_gateway_limit_conf_t  *lcf;
    ngx_http_compile_complex_value_t   ccv;

    lcf = alcf->limit;
    technique = 0;

    if (lcf->limits == NGX_CONF_UNSET_PTR) {
        lcf->limits = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_ai_gateway_limit_t));
        if (lcf->limits == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    lim = ngx_array_push(lcf->limits);
    if (lim == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(lim, sizeof(ngx_http_ai_gateway_limit_t));

    value = cf->args->elts;
    zone.len = 0;
    kinds = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        p = (u_char *) ngx_strchr(value[i].data, '=');

        if (p == NULL) {
            goto invalid;
        }

        s.data = p + 1;
        s.len = value[i].data + value[i].len - s.data;

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            zone = s;

        } else if (ngx_strncmp(value[i].data, "requests=", 9) == 0
                   || ngx_strncmp(value[i].data, "tokens=", 7) == 0)
        {
            n = ngx_atoi(s.data, s.len);

            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            lim->limit = (uint64_t) n;
            lim->kind = (value[i].data[0] == 'r')
                        ? NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS
                        : NGX_HTTP_AI_GATEWAY_LIMIT_TOKENS;
            kinds++;

        } else if (ngx_strncmp(value[i].data, "cost=", 5) == 0) {

            if (ngx_http_ai_gateway_limit_dollars(&s, &lim->limit)
                != NGX_OK)
            {
                goto invalid;
            }

            lim->cost = s;
            lim->kind = NGX_HTTP_AI_GATEWAY_LIMIT_COST;
            kinds++;

        } else if (ngx_strncmp(value[i].data, "model=", 6) == 0
                   || ngx_strncmp(value[i].data, "provider=", 9) == 0)
        {
            list = ngx_http_ai_gateway_limit_list(cf, &s);
            if (list == NULL) {
                goto invalid;
            }

            if (value[i].data[0] == 'm') {
                lim->models = list;

            } else {
                lim->providers = list;
            }

        } else if (ngx_strncmp(value[i].data, "when=", 5) == 0) {

            lim->when = ngx_palloc(cf->pool,
                                   sizeof(ngx_http_complex_value_t));
            if (lim->when == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = lim->when;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(value[i].data, "count=", 6) == 0) {

            if (s.len == 5 && ngx_strncmp(s.data, "total", 5) == 0) {
                lim->count = NGX_HTTP_AI_GATEWAY_LIMIT_TOTAL;

            } else if (s.len == 5 && ngx_strncmp(s.data, "input", 5) == 0) {
                lim->count = NGX_HTTP_AI_GATEWAY_LIMIT_INPUT;

            } else if (s.len == 6 && ngx_strncmp(s.data, "output", 6) == 0) {
                lim->count = NGX_HTTP_AI_GATEWAY_LIMIT_OUTPUT;

            } else {
                goto invalid;
            }

        } else if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            lim->interval = (ngx_msec_t) n;

        } else if (ngx_strncmp(value[i].data, "technique=", 10) == 0) {

            technique = 1;

            if (s.len == 5 && ngx_strncmp(s.data, "fixed", 5) == 0) {
                lim->technique = NGX_HTTP_AI_GATEWAY_LIMIT_FIXED;

            } else if (s.len == 7 && ngx_strncmp(s.data, "sliding", 7) == 0) {
                lim->technique = NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING;

            } else {
                goto invalid;
            }

        } else if (ngx_strncmp(value[i].data, "key=", 4) == 0) {

            lim->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
            if (lim->key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = lim->key;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(value[i].data, "redis=", 6) == 0) {

            if (s.len == 0) {
                goto invalid;
            }

            lim->redis = ngx_http_ai_gateway_redis_ref(cf, &s);
            if (lim->redis == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(value[i].data, "fail=", 5) == 0) {

            if (s.len == 5 && ngx_strncmp(s.data, "allow", 5) == 0) {
                lim->refuse = 0;

            } else if (s.len == 6 && ngx_strncmp(s.data, "refuse", 6) == 0) {
                lim->refuse = 1;

            } else {
                goto invalid;
            }

        } else if (ngx_strncmp(value[i].data, "name=", 5) == 0) {

            if (s.len == 0 || s.len > 64) {
                goto invalid;
            }

            for (j = 0; j < s.len; j++) {
                if (!(isalnum(s.data[j]) || s.data[j] == '_'
                      || s.data[j] == '-' || s.data[j] == '.'))
                {
                    goto invalid;
                }
            }

            lim->name = s;

        } else {
            goto invalid;
        }
    }

    if ((zone.len == 0) == (lim->redis == NULL)
        || kinds != 1 || lim->interval == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_gateway_limit\" needs one of \"zone=\" or "
                           "\"redis=\", one of \"requests=\", \"tokens=\" "
                           "or \"cost=\", and \"interval=\"");
        return NGX_CONF_ERROR;
    }

    if ((lim->models || lim->providers || lim->when)
        && lim->kind != NGX_HTTP_AI_GATEWAY_LIMIT_COST)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"model=\", \"provider=\" and \"when=\" are "
                           "parameters of a spend limit (\"cost=\") in "
                           "\"ai_gateway_limit\"");
        return NGX_CONF_ERROR;
    }

    /* the hosted gateway's spend limits are sliding by default */

    if (!technique && lim->kind == NGX_HTTP_AI_GATEWAY_LIMIT_COST) {
        lim->technique = NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING;
    }

    if (lim->name.len == 0) {
        if (lim->kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS) {
            ngx_str_set(&lim->name, "requests");

        } else if (lim->kind == NGX_HTTP_AI_GATEWAY_LIMIT_TOKENS) {
            ngx_str_set(&lim->name, "tokens");

        } else {
            ngx_str_set(&lim->name, "spend");
        }
    }

    l = lcf->limits->elts;

    for (j = 0; j + 1 < lcf->limits->nelts; j++) {
        if (l[j].name.len == lim->name.len
            && ngx_strncmp(l[j].name.data, lim->name.data, lim->name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate limit name \"%V\": each "
                               "\"ai_gateway_limit\" of a location needs its "
                               "own \"name=\"", &lim->name);
            return NGX_CONF_ERROR;
        }
    }

    lim->ring = (lim->kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS
                 && lim->technique == NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING
                 && lim->limit <= NGX_HTTP_AI_GATEWAY_LIMIT_RING_MAX);

    if (lim->redis) {
        return NGX_CONF_OK;
    }

    lim->zone = ngx_http_ai_gateway_limit_shm_zone(cf, &zone);
    if (lim->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"ai_gateway_limit\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/* cost=: US dollars, e.g. "0.002", at most 9 decimals */

static ngx_int_t
ngx_http_ai_gateway_limit_dollars(ngx_str_t *s, uint64_t *nano)
{
    u_char      *p, *last;
    uint64_t     v;
    ngx_uint_t   dot, decimals;

    if (s->len == 0 || s->len > 20) {
        return NGX_ERROR;
    }

    v = 0;
    dot = 0;
    decimals = 0;
    last = s->data + s->len;

    for (p = s->data; p < last; p++) {

        if (*p == '.' && !dot && p != s->data && p + 1 < last) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || (dot && ++decimals > 9)) {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');

        if (v > 1000000000000000000ULL) {
            return NGX_ERROR;
        }
    }

    for ( /* void */ ; decimals < 9; decimals++) {
        v *= 10;

        if (v > 1000000000000000000ULL) {
            return NGX_ERROR;
        }
    }

    *nano = v;

    return NGX_OK;
}


/* model=a,b: a list of names, none empty */

static ngx_array_t *
ngx_http_ai_gateway_limit_list(ngx_conf_t *cf, ngx_str_t *s)
{
    u_char       *p, *q, *last;
    ngx_str_t    *v;
    ngx_array_t  *list;

    list = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (list == NULL) {
        return NULL;
    }

    p = s->data;
    last = s->data + s->len;

    for ( ;; ) {
        q = ngx_strlchr(p, last, ',');

        if (q == NULL) {
            q = last;
        }

        if (q == p) {
            return NULL;
        }

        v = ngx_array_push(list);
        if (v == NULL) {
            return NULL;
        }

        v->data = p;
        v->len = q - p;

        if (q == last) {
            return list;
        }

        p = q + 1;
    }
}


/* ai_gateway_limit_headers on | off; */

char *
ngx_http_ai_gateway_limit_headers_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->limit->headers != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        alcf->limit->headers = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        alcf->limit->headers = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"on\" or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * ai_gateway_limit_clock value;  the limits' clock, in seconds since the
 * epoch, for tests: refused unless nginx was started with
 * AI_GATEWAY_TEST_CLOCK=1 in its environment.
 */

char *
ngx_http_ai_gateway_limit_clock_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    char                              *env;
    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    env = getenv(NGX_HTTP_AI_GATEWAY_LIMIT_CLOCK_ENV);

    if (env == NULL || ngx_strcmp(env, "1") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_gateway_limit_clock\" is for tests only: "
                           "nginx must be started with "
                           NGX_HTTP_AI_GATEWAY_LIMIT_CLOCK_ENV "=1");
        return NGX_CONF_ERROR;
    }

    if (alcf->limit->clock != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    alcf->limit->clock = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
    if (alcf->limit->clock == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = alcf->limit->clock;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_ai_gateway_limit_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_gateway_limit_log_handler;

    return NGX_OK;
}


/*
 * The limit stage: NGX_OK when the request goes on, or the status of its
 * refusal (recorded by ngx_http_ai_gateway_fail()).
 */

ngx_int_t
ngx_http_ai_gateway_limit_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_uint_t                         i, op;
    ngx_http_ai_gateway_ctx_t         *mctx, **cp;
    ngx_http_ai_gateway_limit_t       *lim;
    ngx_http_ai_gateway_loc_conf_t    *alcf;
    ngx_http_ai_gateway_limit_res_t    res;
    ngx_http_ai_gateway_limit_conf_t  *lcf;
    ngx_http_ai_gateway_limit_part_t  *lp;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
    lcf = alcf->limit;

    if (lcf->limits == NULL || lcf->limits->nelts == 0) {
        return NGX_OK;
    }

    /* the state is the main request's: its attempts share it */

    mctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (mctx == NULL) {
        mctx = ctx;
    }

    lp = mctx->limit;

    if (lp == NULL) {
        lp = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_limit_part_t));
        if (lp == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_array_init(&lp->passed, r->pool, 2,
                           sizeof(ngx_http_ai_gateway_ctx_t *))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        mctx->limit = lp;
    }

    if (lp->checked) {
        /* an attempt after the first: the request was counted once */

        if (lp->refused) {
            return ngx_http_ai_gateway_limit_refuse(r, ctx, lcf, lp);
        }

        goto passed;
    }

    if (lp->waiting) {
        /* a spurious write event: Redis has not answered yet */
        return NGX_AGAIN;
    }

    if (!lp->started) {
        lp->started = 1;
        lp->limits = lcf->limits;

        if (ngx_http_ai_gateway_limit_keys(r, ctx, lp) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        lp->now = ngx_http_ai_gateway_limit_now(r, lcf);
    }

    lim = lp->limits->elts;

    /* first every limit looked at, then the request counted */

    for ( /* void */ ; lp->pass < 2; lp->pass++, lp->i = 0) {

        for ( /* void */ ; lp->i < lp->limits->nelts; lp->i++) {

            i = lp->i;

            if (lp->keys[i].len == 0) {
                continue;
            }

            if (lp->pass == 0) {

                /*
                 * one request limit alone is looked at and counted in one
                 * step (one Redis round trip), in the second pass
                 */

                if (lp->single
                    && lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS)
                {
                    continue;
                }

                op = NGX_HTTP_AI_GATEWAY_LIMIT_PEEK;

            } else if (lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS) {
                op = NGX_HTTP_AI_GATEWAY_LIMIT_TAKE;

            } else {
                continue;
            }

            rc = ngx_http_ai_gateway_limit_ask(r, lp, &lim[i], op, &res);

            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            if (rc == NGX_DECLINED) {
                /* not applied: Redis failed with fail=allow, no room */
                continue;
            }

            ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai gateway limit \"%V\" op %ui: used %uL, "
                           "remaining %uL, refused %d",
                           &lim[i].name, op, res.used, res.remaining,
                           res.refused);

            if (res.refused) {
                lp->checked = 1;
                lp->refused = &lim[i];
                lp->limit = lim[i].limit;
                lp->remaining = 0;
                lp->reset = res.reset;
                lp->known = 1;

                if (lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_COST) {
                    lp->spend = 0;
                    lp->spend_known = 1;
                }

                return ngx_http_ai_gateway_limit_refuse(r, ctx, lcf, lp);
            }

            if (lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_COST
                && (!lp->spend_known || res.remaining < lp->spend))
            {
                /* the spend rule with the least budget left */

                lp->spend = res.remaining;
                lp->spend_known = 1;
            }

            if (lim[i].kind != NGX_HTTP_AI_GATEWAY_LIMIT_COST
                && (lp->pass == 1
                    || lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_TOKENS))
            {
                /* the nearest limit is the one with the least left */

                if (!lp->known || res.remaining < lp->remaining) {
                    lp->limit = lim[i].limit;
                    lp->remaining = res.remaining;
                    lp->reset = res.reset;
                    lp->known = 1;
                }
            }
        }
    }

    lp->checked = 1;

passed:

    cp = ngx_array_push(&lp->passed);
    if (cp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *cp = ctx;

    if (lcf->headers && lp->known) {
        if (ngx_http_ai_gateway_limit_headers(r, lp) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * One limit asked: NGX_OK with its answer, NGX_AGAIN while Redis is asked
 * (the request is posted when it answers, and the check goes on from the
 * same limit), NGX_DECLINED when the limit does not apply this time (its
 * store failed and its policy allows; or the zone had no room).
 */

static ngx_int_t
ngx_http_ai_gateway_limit_ask(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_part_t *lp, ngx_http_ai_gateway_limit_t *lim,
    ngx_uint_t op, ngx_http_ai_gateway_limit_res_t *res)
{
    ngx_int_t            rc;
    ngx_pool_cleanup_t  *cln;

    if (lim->redis == NULL) {
        if (ngx_http_ai_gateway_limit_shm(lim, &lp->keys[lp->i], op, 0,
                                          lp->now, res)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai_gateway: limit \"%V\": no room in its "
                          "zone \"%V\", not applied",
                          &lim->name, &lim->zone->shm.name);
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (lp->answered) {
        lp->answered = 0;

        if (lp->failed) {
            goto failed;
        }

        *res = lp->res;

        return NGX_OK;
    }

    if (!lp->cleanup) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            goto failed;
        }

        cln->handler = ngx_http_ai_gateway_limit_cleanup;
        cln->data = lp;
        lp->cleanup = 1;
    }

    rc = ngx_http_ai_gateway_limit_redis(lim, &lp->keys[lp->i], op, lp->now,
                                         r->pool, r->connection->log,
                                         ngx_http_ai_gateway_limit_answered,
                                         lp, &lp->op);
    if (rc == NGX_AGAIN) {
        lp->request = r;
        lp->waiting = 1;
        return NGX_AGAIN;
    }

failed:

    ngx_http_ai_gateway_limit_policy(r, lim, res);

    return res->refused ? NGX_OK : NGX_DECLINED;
}


/* Redis answered, or failed (res NULL): the check goes on */

static void
ngx_http_ai_gateway_limit_answered(void *data,
    ngx_http_ai_gateway_limit_res_t *res)
{
    ngx_http_ai_gateway_limit_part_t *lp = data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    lp->op = NULL;
    lp->waiting = 0;
    lp->answered = 1;
    lp->failed = (res == NULL);

    if (res) {
        lp->res = *res;
    }

    r = lp->request;
    c = r->connection;

    if (ngx_http_post_request(r, NULL) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * Redis cannot say: the limit's policy.  fail=allow lets the request go
 * on unlimited by it, fail=refuse refuses it; either is logged at most
 * once per NGX_HTTP_AI_GATEWAY_LIMIT_LOG_INTERVAL seconds per worker.
 */

static void
ngx_http_ai_gateway_limit_policy(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_t *lim, ngx_http_ai_gateway_limit_res_t *res)
{
    ngx_memzero(res, sizeof(ngx_http_ai_gateway_limit_res_t));

    res->refused = lim->refuse;
    res->reset = 1000;

    if (ngx_time() - ngx_http_ai_gateway_limit_logged
        >= NGX_HTTP_AI_GATEWAY_LIMIT_LOG_INTERVAL)
    {
        ngx_http_ai_gateway_limit_logged = ngx_time();

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_gateway: limit \"%V\": Redis %V did not "
                      "answer, requests are %s (fail=%s)", &lim->name,
                      ngx_http_ai_gateway_redis_name(lim->redis),
                      lim->refuse ? "refused" : "allowed",
                      lim->refuse ? "refuse" : "allow");
    }
}


/* the request ends (a client that left too): a wait for Redis cancelled */

static void
ngx_http_ai_gateway_limit_cleanup(void *data)
{
    ngx_http_ai_gateway_limit_part_t *lp = data;

    if (lp->waiting && lp->op) {
        ngx_http_ai_gateway_limit_redis_cancel(lp->op);
        lp->op = NULL;
        lp->waiting = 0;
    }
}


/*
 * A spend limit's filters: the request's model and provider in its lists,
 * its when= neither empty nor "0".
 */

static ngx_int_t
ngx_http_ai_gateway_limit_applies(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_limit_t *lim)
{
    ngx_str_t  v;

    if (lim->models) {
        ngx_http_ai_gateway_limit_model(r, ctx);
    }

    if (lim->models
        && !ngx_http_ai_gateway_limit_in(lim->models, &ctx->route.model))
    {
        return NGX_DECLINED;
    }

    if (lim->providers
        && !ngx_http_ai_gateway_limit_in(lim->providers,
                                         &ctx->route.provider))
    {
        return NGX_DECLINED;
    }

    if (lim->when) {
        if (ngx_http_complex_value(r, lim->when, &v) != NGX_OK) {
            return NGX_ERROR;
        }

        if (v.len == 0 || (v.len == 1 && v.data[0] == '0')) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* the model as $ai_gateway_model reads it: the body's "model" */

static void
ngx_http_ai_gateway_limit_model(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    if (ctx->route.model_done) {
        return;
    }

    ctx->route.model_done = 1;

    if (r->request_body && r->request_body->bufs) {
        (void) ngx_http_ai_gateway_json_top_string(r->pool,
                                                   r->request_body->bufs,
                                                   "model",
                                                   &ctx->route.model);
    }
}


static ngx_uint_t
ngx_http_ai_gateway_limit_in(ngx_array_t *list, ngx_str_t *v)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (s[i].len == v->len
            && ngx_strncmp(s[i].data, v->data, v->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * One key per limit: the limit's identity (its name, what and how it
 * counts, its interval), the gateway, and the value of key= (the gateway
 * alone without it).  A key= whose value is empty leaves the request out
 * of that limit, as limit_req does; a value longer than
 * NGX_HTTP_AI_GATEWAY_LIMIT_KEY_MAX is replaced by its SHA-256.
 */

static ngx_int_t
ngx_http_ai_gateway_limit_keys(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_limit_part_t *lp)
{
    u_char                       *p, md[EVP_MAX_MD_SIZE];
    size_t                        len;
    ngx_int_t                     rc;
    ngx_str_t                     v, *gw;
    ngx_uint_t                    i, n;
    unsigned int                  mdlen;
    ngx_http_ai_gateway_limit_t  *lim;

    lim = lp->limits->elts;
    gw = &ctx->route.gateway_id;

    n = 0;

    lp->keys = ngx_pcalloc(r->pool, lp->limits->nelts * sizeof(ngx_str_t));
    if (lp->keys == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < lp->limits->nelts; i++) {

        ngx_str_null(&v);

        rc = ngx_http_ai_gateway_limit_applies(r, ctx, &lim[i]);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (lim[i].key) {
            if (ngx_http_complex_value(r, lim[i].key, &v) != NGX_OK) {
                return NGX_ERROR;
            }

            if (v.len == 0) {
                continue;
            }

            if (v.len > NGX_HTTP_AI_GATEWAY_LIMIT_KEY_MAX) {
                if (EVP_Digest(v.data, v.len, md, &mdlen, EVP_sha256(), NULL)
                    != 1)
                {
                    return NGX_ERROR;
                }

                p = ngx_pnalloc(r->pool, 2 * mdlen);
                if (p == NULL) {
                    return NGX_ERROR;
                }

                v.len = ngx_hex_dump(p, md, mdlen) - p;
                v.data = p;
            }
        }

        len = lim[i].name.len + gw->len + v.len + 4 * NGX_INT64_LEN + 8;

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        lp->keys[i].data = p;

        p = ngx_sprintf(p, "%V:%ui:%ui:%ui:%M:%uz:%V:%V",
                        &lim[i].name, lim[i].kind, lim[i].count,
                        lim[i].technique, lim[i].interval, gw->len, gw, &v);

        lp->keys[i].len = p - lp->keys[i].data;

        n++;
    }

    lp->single = (n == 1);

    return NGX_OK;
}


/* ms since the epoch: the wall clock, or the test's */

static uint64_t
ngx_http_ai_gateway_limit_now(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_conf_t *lcf)
{
    off_t        n;
    ngx_str_t    v;
    ngx_time_t  *tp;

    if (lcf->clock
        && ngx_http_complex_value(r, lcf->clock, &v) == NGX_OK
        && v.len)
    {
        n = ngx_atoof(v.data, v.len);

        if (n != NGX_ERROR) {
            return (uint64_t) n * 1000;
        }
    }

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


static ngx_int_t
ngx_http_ai_gateway_limit_refuse(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_limit_conf_t *lcf,
    ngx_http_ai_gateway_limit_part_t *lp)
{
    u_char                       *last, provider[64], model[128];
    ngx_http_ai_gateway_limit_t  *lim;

    if (lcf->headers) {
        if (ngx_http_ai_gateway_limit_headers(r, lp) != NGX_OK
            || ngx_http_ai_gateway_limit_header(r, "Retry-After",
                                                (lp->reset + 999) / 1000)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_gateway: refused by limit \"%V\"", &lp->refused->name);

    lim = lp->refused;

    if (lim->kind != NGX_HTTP_AI_GATEWAY_LIMIT_COST) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED,
                                        NULL);
    }

    /* the hosted gateway's message; the model and provider made printable */

    ngx_http_ai_gateway_limit_model(r, ctx);

    last = ngx_http_ai_gateway_limit_printable(provider,
                                          provider + sizeof(provider) - 1,
                                          &ctx->route.provider);
    *last = '\0';

    last = ngx_http_ai_gateway_limit_printable(model,
                                              model + sizeof(model) - 1,
                                              &ctx->route.model);
    *last = '\0';

    return ngx_http_ai_gateway_fail(r, ctx,
                    NGX_HTTP_AI_GATEWAY_ERR_SPEND_LIMITED,
                    "Spend limit exceeded: rule '%V' (cost limit %V per "
                    "%Ms, %s) for %s %s", &lim->name, &lim->cost,
                    lim->interval / 1000,
                    lim->technique == NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING
                    ? "sliding" : "fixed", provider, model);
}


/* at most last - p bytes of s, a byte below 0x20 or 0x7f as '?' */

static u_char *
ngx_http_ai_gateway_limit_printable(u_char *p, u_char *last, ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len && p < last; i++) {
        *p++ = (s->data[i] < 0x20 || s->data[i] == 0x7f) ? '?' : s->data[i];
    }

    return p;
}


static ngx_int_t
ngx_http_ai_gateway_limit_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_limit_part_t *lp)
{
    if (ngx_http_ai_gateway_limit_header(r, "RateLimit-Limit", lp->limit)
        != NGX_OK
        || ngx_http_ai_gateway_limit_header(r, "RateLimit-Remaining",
                                            lp->remaining)
           != NGX_OK
        || ngx_http_ai_gateway_limit_header(r, "RateLimit-Reset",
                                            (lp->reset + 999) / 1000)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a header whose value is a number formatted here */

static ngx_int_t
ngx_http_ai_gateway_limit_header(ngx_http_request_t *r, char *name,
    uint64_t n)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "%uL", n) - p;

    return NGX_OK;
}


/*
 * The log phase of the main request: its token limits charged with the
 * counts of the request, or of each attempt that passed the stage.
 */

static ngx_int_t
ngx_http_ai_gateway_limit_log_handler(ngx_http_request_t *r)
{
    uint64_t                           in, out, cost, n, now;
    ngx_uint_t                         i, j;
    ngx_http_ai_gateway_ctx_t         *ctx, **cp;
    ngx_http_ai_gateway_usage_t       *u;
    ngx_http_ai_gateway_limit_t       *lim;
    ngx_http_ai_gateway_loc_conf_t    *alcf;
    ngx_http_ai_gateway_limit_res_t    res;
    ngx_http_ai_gateway_limit_part_t  *lp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->limit == NULL) {
        return NGX_OK;
    }

    lp = ctx->limit;

    if (lp->charged || lp->refused || lp->keys == NULL) {
        return NGX_OK;
    }

    lp->charged = 1;

    in = 0;
    out = 0;
    cost = 0;

    cp = lp->passed.elts;

    for (j = 0; j < lp->passed.nelts; j++) {

        if (cp[j]->cost.known && cp[j]->cost.value > 0) {
            cost += (uint64_t) ngx_min(
                        cp[j]->cost.value * NGX_HTTP_AI_GATEWAY_LIMIT_NANO
                        + 0.999, 1e18);
        }

        u = &cp[j]->usage;

        if (!u->known) {
            continue;
        }

        in += u->input + u->cached + u->cache_write;
        out += u->output;
    }

    if (in == 0 && out == 0 && cost == 0) {
        return NGX_OK;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    now = ngx_http_ai_gateway_limit_now(r, alcf->limit);

    lim = lp->limits->elts;

    for (i = 0; i < lp->limits->nelts; i++) {

        if (lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS
            || lp->keys[i].len == 0)
        {
            continue;
        }

        switch (lim[i].kind == NGX_HTTP_AI_GATEWAY_LIMIT_COST
                ? (ngx_uint_t) -1 : lim[i].count)
        {
        case (ngx_uint_t) -1:
            n = cost;
            break;

        case NGX_HTTP_AI_GATEWAY_LIMIT_INPUT:
            n = in;
            break;

        case NGX_HTTP_AI_GATEWAY_LIMIT_OUTPUT:
            n = out;
            break;

        default: /* NGX_HTTP_AI_GATEWAY_LIMIT_TOTAL */
            n = in + out;
        }

        if (n == 0) {
            continue;
        }

        if (lim[i].redis) {
            ngx_http_ai_gateway_limit_redis_charge(&lim[i], &lp->keys[i], n,
                                                   now, r->pool,
                                                   r->connection->log);
            continue;
        }

        if (ngx_http_ai_gateway_limit_shm(&lim[i], &lp->keys[i],
                                          NGX_HTTP_AI_GATEWAY_LIMIT_CHARGE,
                                          n, now, &res)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai_gateway: limit \"%V\": no room in its zone "
                          "\"%V\", %uL not charged",
                          &lim[i].name, &lim[i].zone->shm.name, n);
            continue;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai gateway limit \"%V\": %uL tokens charged, "
                       "%uL left", &lim[i].name, n, res.remaining);
    }

    return NGX_OK;
}


/*
 * $ai_gateway_limit (data 0), $ai_gateway_limit_remaining (data 1) and
 * $ai_gateway_limit_spend_remaining (data 2: US dollars, as few decimals
 * as the value needs)
 */

ngx_int_t
ngx_http_ai_gateway_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                            *p;
    ngx_http_ai_gateway_ctx_t         *ctx;
    ngx_http_ai_gateway_limit_part_t  *lp;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    lp = ctx ? ctx->limit : NULL;

    if (lp == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        if (lp->refused == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = lp->refused->name.data;
        v->len = lp->refused->name.len;

    } else if (data == 1) {
        if (!lp->known) {
            v->not_found = 1;
            return NGX_OK;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_sprintf(p, "%uL", lp->remaining) - p;

    } else {
        if (!lp->spend_known) {
            v->not_found = 1;
            return NGX_OK;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 2);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_sprintf(p, "%uL.%09uL", lp->spend / 1000000000,
                             lp->spend % 1000000000) - p;

        while (v->data[v->len - 1] == '0') {
            v->len--;
        }

        if (v->data[v->len - 1] == '.') {
            v->len--;
        }
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
