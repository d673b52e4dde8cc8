
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_ai_gateway_redis.h"


/*
 * The module's Redis servers: hiredis's asynchronous API on nginx's event
 * loop, for every use of Redis (the cache store today).  A server is
 * declared once ("ai_gateway_redis name address ...") and referred to by
 * name, or written in place where it is used; either way it is one
 * ngx_http_ai_gateway_redis_t, and each worker keeps one connection to it,
 * opened when first needed and again after a failure, shared by all its
 * uses.  This small module of its own holds the declarations.
 *
 * The address is an IPv4 address: hiredis is never handed a name, which it
 * would resolve with a blocking call.  hiredis reads and writes the socket
 * when nginx says it is ready (the adapter below); command timeouts are
 * nginx timers, since hiredis 0.14 has none for async commands.
 *
 * Access control: a server may have a password (password_file=, read when
 * the configuration is read, never logged), an ACL user name with it
 * (user=, "AUTH user password") and a database (db=, "SELECT n").  AUTH and
 * SELECT are the first commands of every connection, pipelined before the
 * commands that wait for the connection; when either fails, the
 * connection is freed from its reply callback, so that no command queued
 * behind it gets a reply (they fail: a cache miss), and the server is
 * "down" for a while, as after any failure.  Every failure is logged at
 * most once per interval, the connection is dropped and, for a second,
 * not tried again.
 */


#define NGX_HTTP_AI_GATEWAY_REDIS_LOG_INTERVAL  10
#define NGX_HTTP_AI_GATEWAY_REDIS_BACKOFF       1000
#define NGX_HTTP_AI_GATEWAY_REDIS_TIMEOUT       200
#define NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX  4096


struct ngx_http_ai_gateway_redis_s {
    ngx_str_t                      name;       /* declared; empty: in place */
    ngx_str_t                      address;    /* "ip:port" */
    ngx_str_t                      log_name;
    u_char                        *host;       /* an IP address, '\0' */
    in_port_t                      port;
    ngx_msec_t                     timeout;
    ngx_int_t                      db;         /* NGX_CONF_UNSET: none */
    ngx_str_t                      user;       /* ACL user, with password */
    ngx_str_t                      password;   /* the secret itself */
    ngx_str_t                      password_file;

    u_char                        *file;       /* first referred to at */
    ngx_uint_t                     line;
    unsigned                       declared:1;

    /* the worker's connection */

    redisAsyncContext             *ac;
    ngx_msec_t                     retry;      /* not before */
    time_t                         logged;
    ngx_uint_t                     quiet;      /* errors not logged */
};


struct ngx_http_ai_gateway_redis_op_s {
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_handler_pt   handler;  /* NULL: not waited */
    void                                  *data;     /* NULL: cancelled */
    ngx_uint_t                             expect;
    ngx_event_t                            timer;
    u_char                                 what[16]; /* the command */
};


typedef struct {
    ngx_array_t                    servers;    /* of redis_t * */
} ngx_http_ai_gateway_redis_main_conf_t;


static void *ngx_http_ai_gateway_redis_create_main_conf(ngx_conf_t *cf);
static void ngx_http_ai_gateway_redis_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_ai_gateway_redis_init_main_conf(ngx_conf_t *cf,
    void *conf);
static char *ngx_http_ai_gateway_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_ai_gateway_redis_t *ngx_http_ai_gateway_redis_new(
    ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_gateway_redis_address(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *address);
static ngx_int_t ngx_http_ai_gateway_redis_password(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *path);
static void ngx_http_ai_gateway_redis_forget(void *data);
static ngx_http_ai_gateway_redis_op_t *ngx_http_ai_gateway_redis_exec(
    ngx_http_ai_gateway_redis_t *rd, ngx_uint_t argc, ngx_str_t *argv,
    ngx_uint_t expect, ngx_http_ai_gateway_redis_handler_pt handler,
    void *data, ngx_log_t *log);
static redisAsyncContext *ngx_http_ai_gateway_redis_connect(
    ngx_http_ai_gateway_redis_t *rd, ngx_log_t *log);
static ngx_int_t ngx_http_ai_gateway_redis_login(
    ngx_http_ai_gateway_redis_t *rd, redisAsyncContext *ac);
static void ngx_http_ai_gateway_redis_failed(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log, const char *what, const char *err);
static void ngx_http_ai_gateway_redis_drop(ngx_http_ai_gateway_redis_t *rd,
    redisAsyncContext *ac);
static void ngx_http_ai_gateway_redis_error_text(u_char *buf, size_t size,
    char *s, size_t len, ngx_uint_t word);
static void ngx_http_ai_gateway_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ai_gateway_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_ai_gateway_redis_logged_in(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_ai_gateway_redis_got(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_ai_gateway_redis_timeout(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_read(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_write(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_add_read(void *data);
static void ngx_http_ai_gateway_redis_del_read(void *data);
static void ngx_http_ai_gateway_redis_add_write(void *data);
static void ngx_http_ai_gateway_redis_del_write(void *data);
static void ngx_http_ai_gateway_redis_cleanup(void *data);


static ngx_command_t  ngx_http_ai_gateway_redis_commands[] = {

    { ngx_string("ai_gateway_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_gateway_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_redis_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_ai_gateway_redis_create_main_conf, /* create main conf */
    ngx_http_ai_gateway_redis_init_main_conf,   /* init main conf */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_gateway_redis_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_redis_module_ctx, /* module context */
    ngx_http_ai_gateway_redis_commands,    /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_gateway_redis_exit_process, /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * A worker that exits closes its connections to Redis: nginx would
 * otherwise report them as open sockets left (and abort) when it exits
 * gracefully.
 */

static void
ngx_http_ai_gateway_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                              i;
    redisAsyncContext                      *ac;
    ngx_http_ai_gateway_redis_t           **rdp;
    ngx_http_ai_gateway_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                            ngx_http_ai_gateway_redis_module);
    if (rmcf == NULL) {
        return;
    }

    rdp = rmcf->servers.elts;

    for (i = 0; i < rmcf->servers.nelts; i++) {
        ac = rdp[i]->ac;

        if (ac) {
            rdp[i]->ac = NULL;
            redisAsyncFree(ac);
        }
    }
}


static void *
ngx_http_ai_gateway_redis_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_redis_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_ai_gateway_redis_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->servers, cf->pool, 4,
                       sizeof(ngx_http_ai_gateway_redis_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


/* every server referred to by name was declared */

static char *
ngx_http_ai_gateway_redis_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ai_gateway_redis_main_conf_t *rmcf = conf;

    ngx_uint_t                    i;
    ngx_http_ai_gateway_redis_t **rdp;

    rdp = rmcf->servers.elts;

    for (i = 0; i < rmcf->servers.nelts; i++) {
        if (rdp[i]->declared) {
            continue;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "no \"ai_gateway_redis %V\" is declared, as used "
                      "in %s:%ui", &rdp[i]->name, rdp[i]->file,
                      rdp[i]->line);

        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ai_gateway_redis name ip:port [timeout=] [db=] [user=] [password_file=]; */

static char *
ngx_http_ai_gateway_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                    *value;
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_http_ai_gateway_redis_t  *rd;

    value = cf->args->elts;

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, ':')
        || (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Redis server name \"%V\" in "
                           "\"ai_gateway_redis\" directive, it must not be "
                           "\"off\" nor have a \":\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    rd = ngx_http_ai_gateway_redis_ref(cf, &value[1]);
    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    if (rd->declared) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate Redis server \"%V\" in "
                           "\"ai_gateway_redis\" directive, a name is "
                           "declared once", &value[1]);
        return NGX_CONF_ERROR;
    }

    rd->declared = 1;

    if (ngx_http_ai_gateway_redis_address(cf, rd, &value[2]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        rc = ngx_http_ai_gateway_redis_parameter(cf, rd, &value[i]);

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"ai_gateway_redis\" directive, it must be "
                               "\"timeout=\", \"db=\", \"user=\" or "
                               "\"password_file=\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_ai_gateway_redis_done(cf, rd);
}


/* a server written in place: "ip:port", its parameters follow */

ngx_http_ai_gateway_redis_t *
ngx_http_ai_gateway_redis_add(ngx_conf_t *cf, ngx_str_t *address)
{
    ngx_http_ai_gateway_redis_t  *rd;

    rd = ngx_http_ai_gateway_redis_new(cf);
    if (rd == NULL) {
        return NULL;
    }

    rd->declared = 1;

    if (ngx_http_ai_gateway_redis_address(cf, rd, address) != NGX_OK) {
        return NULL;
    }

    return rd;
}


/* a server by name, declared before or after (checked at the end) */

ngx_http_ai_gateway_redis_t *
ngx_http_ai_gateway_redis_ref(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                              i;
    ngx_http_ai_gateway_redis_t            *rd, **rdp;
    ngx_http_ai_gateway_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                            ngx_http_ai_gateway_redis_module);

    rdp = rmcf->servers.elts;

    for (i = 0; i < rmcf->servers.nelts; i++) {
        if (rdp[i]->name.len == name->len
            && ngx_strncmp(rdp[i]->name.data, name->data, name->len) == 0)
        {
            return rdp[i];
        }
    }

    rd = ngx_http_ai_gateway_redis_new(cf);
    if (rd == NULL) {
        return NULL;
    }

    rd->name = *name;
    rd->file = cf->conf_file->file.name.data;
    rd->line = cf->conf_file->line;

    return rd;
}


static ngx_http_ai_gateway_redis_t *
ngx_http_ai_gateway_redis_new(ngx_conf_t *cf)
{
    ngx_pool_cleanup_t                     *cln;
    ngx_http_ai_gateway_redis_t            *rd, **rdp;
    ngx_http_ai_gateway_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                            ngx_http_ai_gateway_redis_module);

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_redis_t));
    if (rd == NULL) {
        return NULL;
    }

    rd->timeout = NGX_CONF_UNSET_MSEC;
    rd->db = NGX_CONF_UNSET;

    /* the password is wiped when the configuration goes */

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ai_gateway_redis_forget;
    cln->data = rd;

    rdp = ngx_array_push(&rmcf->servers);
    if (rdp == NULL) {
        return NULL;
    }

    *rdp = rd;

    return rd;
}


/* an IP address: no name is resolved, at start or later */

static ngx_int_t
ngx_http_ai_gateway_redis_address(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *address)
{
    u_char     *p;
    ngx_int_t   port;
    ngx_str_t   host, *value;

    p = ngx_strlchr(address->data, address->data + address->len, ':');

    if (p == NULL) {
        goto invalid;
    }

    host.data = address->data;
    host.len = p - address->data;

    port = ngx_atoi(p + 1, address->data + address->len - p - 1);

    if (port < 1 || port > 65535
        || ngx_inet_addr(host.data, host.len) == INADDR_NONE)
    {
        goto invalid;
    }

    rd->host = ngx_pnalloc(cf->pool, host.len + 1);
    if (rd->host == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(rd->host, host.data, host.len + 1);

    rd->port = (in_port_t) port;
    rd->address = *address;

    return NGX_OK;

invalid:

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid Redis address \"%V\" in \"%V\" directive, "
                       "it must be \"IPv4-address:port\", e.g. "
                       "\"127.0.0.1:6379\"", address, &value[0]);

    return NGX_ERROR;
}


/*
 * A server parameter: NGX_OK, NGX_DECLINED when the value is not one,
 * NGX_ERROR (logged).
 */

ngx_int_t
ngx_http_ai_gateway_redis_parameter(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *value)
{
    ngx_str_t  s, *args;

    args = cf->args->elts;

    if (value->len >= 8 && ngx_strncmp(value->data, "timeout=", 8) == 0) {

        if (rd->timeout != NGX_CONF_UNSET_MSEC) {
            goto duplicate;
        }

        s.data = value->data + 8;
        s.len = value->len - 8;

        rd->timeout = ngx_parse_time(&s, 0);

        if (rd->timeout == (ngx_msec_t) NGX_ERROR || rd->timeout == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\" in \"%V\" directive, "
                               "it must be a time above 0, e.g. "
                               "\"timeout=500ms\"", value, &args[0]);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (value->len >= 3 && ngx_strncmp(value->data, "db=", 3) == 0) {

        if (rd->db != NGX_CONF_UNSET) {
            goto duplicate;
        }

        rd->db = ngx_atoi(value->data + 3, value->len - 3);

        if (rd->db == NGX_ERROR || rd->db > 0x7fffffff) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid database index \"%V\" in \"%V\" "
                               "directive, it must be a number from 0, e.g. "
                               "\"db=1\"", value, &args[0]);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (value->len >= 5 && ngx_strncmp(value->data, "user=", 5) == 0) {

        if (rd->user.data) {
            goto duplicate;
        }

        rd->user.data = value->data + 5;
        rd->user.len = value->len - 5;

        if (rd->user.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty Redis user name in \"%V\" of \"%V\" "
                               "directive, it must be \"user=name\"", value,
                               &args[0]);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (value->len >= 14
        && ngx_strncmp(value->data, "password_file=", 14) == 0)
    {
        if (rd->password_file.data) {
            goto duplicate;
        }

        s.data = value->data + 14;
        s.len = value->len - 14;

        return ngx_http_ai_gateway_redis_password(cf, rd, &s);
    }

    return NGX_DECLINED;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "duplicate parameter \"%V\" in \"%V\" directive, "
                       "each is given once", value, &args[0]);

    return NGX_ERROR;
}


/* the server's parameters are all read */

char *
ngx_http_ai_gateway_redis_done(ngx_conf_t *cf, ngx_http_ai_gateway_redis_t *rd)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *value;

    if (rd->user.len && rd->password.len == 0) {
        value = cf->args->elts;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "Redis \"user=\" needs \"password_file=\" in "
                           "\"%V\" directive", &value[0]);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(rd->timeout, NGX_HTTP_AI_GATEWAY_REDIS_TIMEOUT);

    if (rd->name.len == 0) {
        rd->log_name = rd->address;
        return NGX_CONF_OK;
    }

    len = sizeof("\"\" at ") - 1 + rd->name.len + rd->address.len;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    rd->log_name.data = p;
    rd->log_name.len = ngx_sprintf(p, "\"%V\" at %V", &rd->name,
                                   &rd->address)
                       - p;

    return NGX_CONF_OK;
}


/*
 * password_file=: the secret is the file's content without a final line
 * break.  It is read now, when the configuration is (by the master, before
 * workers drop privileges), and never written to a log or an error
 * message; the messages name the file only.
 */

static ngx_int_t
ngx_http_ai_gateway_redis_password(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *path)
{
    u_char           *p;
    size_t            len;
    ssize_t           n;
    ngx_str_t         name, *args;
    ngx_err_t         err;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    args = cf->args->elts;

    if (path->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"password_file=\" in \"%V\" directive, "
                           "it must be the path of a file that holds the "
                           "password", &args[0]);
        return NGX_ERROR;
    }

    name = *path;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    rd->password_file = name;

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" directive: cannot open the Redis "
                           "password file \"%s\"", &args[0], name.data);
        return NGX_ERROR;
    }

    p = NULL;
    n = 0;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "\"%V\" directive: cannot read the Redis "
                           "password file \"%s\"", &args[0], name.data);
        goto failed;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the Redis password file "
                           "\"%s\" is not a regular file", &args[0],
                           name.data);
        goto failed;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the Redis password file "
                           "\"%s\" is larger than %d bytes", &args[0],
                           name.data, NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX);
        goto failed;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" directive: the Redis password file "
                           "\"%s\" can be read by every user", &args[0],
                           name.data);
    }

    p = ngx_pnalloc(cf->pool, NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX + 1);
    if (p == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, p, NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX + 1,
                      0);

    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" directive: cannot read the Redis "
                           "password file \"%s\"", &args[0], name.data);
        goto failed;
    }

    if (n > NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the Redis password file "
                           "\"%s\" is larger than %d bytes", &args[0],
                           name.data, NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX);
        goto failed;
    }

    (void) ngx_close_file(file.fd);
    file.fd = NGX_INVALID_FILE;

    /* one final line break is not part of the password */

    len = n;

    if (len && p[len - 1] == LF) {
        len--;

        if (len && p[len - 1] == CR) {
            len--;
        }
    }

    rd->password.data = p;
    rd->password.len = len;

    if (len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the Redis password file "
                           "\"%s\" is empty, it must hold the password on "
                           "one line", &args[0], name.data);
        return NGX_ERROR;
    }

    if (ngx_strlchr(p, p + len, LF) || ngx_strlchr(p, p + len, CR)
        || ngx_strlchr(p, p + len, '\0'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the Redis password file "
                           "\"%s\" has more than one line or a NUL byte, "
                           "it must hold the password on one line",
                           &args[0], name.data);
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    if (p) {
        ngx_explicit_memzero(p, NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX + 1);
    }

    if (file.fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(file.fd);
    }

    return NGX_ERROR;
}


static void
ngx_http_ai_gateway_redis_forget(void *data)
{
    ngx_http_ai_gateway_redis_t *rd = data;

    if (rd->password.data) {
        ngx_explicit_memzero(rd->password.data,
                             NGX_HTTP_AI_GATEWAY_REDIS_PASSWORD_MAX + 1);
    }
}


ngx_str_t *
ngx_http_ai_gateway_redis_name(ngx_http_ai_gateway_redis_t *rd)
{
    return &rd->log_name;
}


/*
 * Starts a command; handler(data, reply) is called once, from the event
 * loop, with the reply or NULL (see ngx_http_ai_gateway_redis.h).  Returns
 * NULL when Redis cannot be asked now: the handler is not called, the
 * caller goes on as after a failure.
 */

ngx_http_ai_gateway_redis_op_t *
ngx_http_ai_gateway_redis_command(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_uint_t expect,
    ngx_http_ai_gateway_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    return ngx_http_ai_gateway_redis_exec(rd, argc, argv, expect, handler,
                                          data, log);
}


/* the request went away: hiredis still owns the op, until its reply */

void
ngx_http_ai_gateway_redis_cancel(ngx_http_ai_gateway_redis_op_t *op)
{
    op->data = NULL;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }
}


/* a command not waited for (SET, DEL): only its failure is logged */

void
ngx_http_ai_gateway_redis_send(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_log_t *log)
{
    (void) ngx_http_ai_gateway_redis_exec(rd, argc, argv, 0, NULL, NULL,
                                          log);
}


static ngx_http_ai_gateway_redis_op_t *
ngx_http_ai_gateway_redis_exec(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_uint_t expect,
    ngx_http_ai_gateway_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    size_t                           lens[NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS];
    ngx_uint_t                       i;
    const char                      *args[NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS];
    redisAsyncContext               *ac;
    ngx_http_ai_gateway_redis_op_t  *op;

    if (argc == 0 || argc > NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS) {
        return NULL;
    }

    ac = ngx_http_ai_gateway_redis_connect(rd, log);
    if (ac == NULL) {
        return NULL;
    }

    op = ngx_calloc(sizeof(ngx_http_ai_gateway_redis_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    op->rd = rd;
    op->handler = handler;
    op->data = data;
    op->expect = expect;

    (void) ngx_cpystrn(op->what, argv[0].data,
                       ngx_min(argv[0].len + 1, sizeof(op->what)));

    for (i = 0; i < argc; i++) {
        args[i] = (const char *) argv[i].data;
        lens[i] = argv[i].len;
    }

    if (redisAsyncCommandArgv(ac, ngx_http_ai_gateway_redis_got, op,
                              (int) argc, args, lens)
        != REDIS_OK)
    {
        ngx_http_ai_gateway_redis_failed(rd, log, (char *) op->what,
                                         ac->errstr);
        ngx_free(op);
        return NULL;
    }

    if (handler == NULL) {
        /* hiredis frees the op with the reply */
        return op;
    }

    op->timer.handler = ngx_http_ai_gateway_redis_timeout;
    op->timer.data = op;
    op->timer.log = ngx_cycle->log;

    ngx_add_timer(&op->timer, rd->timeout);

    return op;
}


static redisAsyncContext *
ngx_http_ai_gateway_redis_connect(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log)
{
    redisAsyncContext  *ac;
    ngx_connection_t   *c;

    if (rd->ac) {
        return rd->ac;
    }

    if (rd->retry && (ngx_msec_int_t) (rd->retry - ngx_current_msec) > 0) {
        return NULL;
    }

    rd->retry = 0;

    /* a non-blocking connect to an address, no name resolution */

    ac = redisAsyncConnect((char *) rd->host, rd->port);

    if (ac == NULL) {
        ngx_http_ai_gateway_redis_failed(rd, log, "connect", "no memory");
        return NULL;
    }

    if (ac->err) {
        ngx_http_ai_gateway_redis_failed(rd, log, "connect", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }

    c = ngx_get_connection(ac->c.fd, ngx_cycle->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NULL;
    }

    c->data = ac;
    c->read->handler = ngx_http_ai_gateway_redis_read;
    c->write->handler = ngx_http_ai_gateway_redis_write;
    c->read->log = c->log;
    c->write->log = c->log;

    ac->data = rd;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_ai_gateway_redis_add_read;
    ac->ev.delRead = ngx_http_ai_gateway_redis_del_read;
    ac->ev.addWrite = ngx_http_ai_gateway_redis_add_write;
    ac->ev.delWrite = ngx_http_ai_gateway_redis_del_write;
    ac->ev.cleanup = ngx_http_ai_gateway_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_ai_gateway_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_ai_gateway_redis_disconnected);

    if (ngx_http_ai_gateway_redis_login(rd, ac) != NGX_OK) {
        ngx_http_ai_gateway_redis_failed(rd, log, "connect", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }

    rd->ac = ac;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "ai gateway redis: connecting to %V", &rd->log_name);

    return ac;
}


/* AUTH and SELECT, queued before anything else on a new connection */

static ngx_int_t
ngx_http_ai_gateway_redis_login(ngx_http_ai_gateway_redis_t *rd,
    redisAsyncContext *ac)
{
    int          n;
    u_char       db[NGX_INT_T_LEN];
    size_t       lens[3];
    const char  *args[3];

    if (rd->password.len) {
        n = 0;

        args[n] = "AUTH";
        lens[n++] = 4;

        if (rd->user.len) {
            args[n] = (const char *) rd->user.data;
            lens[n++] = rd->user.len;
        }

        args[n] = (const char *) rd->password.data;
        lens[n++] = rd->password.len;

        if (redisAsyncCommandArgv(ac, ngx_http_ai_gateway_redis_logged_in,
                                  "AUTH", n, args, lens)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }
    }

    if (rd->db != NGX_CONF_UNSET && rd->db != 0) {
        args[0] = "SELECT";
        lens[0] = 6;
        args[1] = (const char *) db;
        lens[1] = ngx_sprintf(db, "%i", rd->db) - db;

        if (redisAsyncCommandArgv(ac, ngx_http_ai_gateway_redis_logged_in,
                                  "SELECT", 2, args, lens)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* logged once per interval; Redis is not tried again for a while */

static void
ngx_http_ai_gateway_redis_failed(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log, const char *what, const char *err)
{
    rd->retry = ngx_current_msec + NGX_HTTP_AI_GATEWAY_REDIS_BACKOFF;

    if (rd->retry == 0) {
        rd->retry = 1;
    }

    if (ngx_time() - rd->logged < NGX_HTTP_AI_GATEWAY_REDIS_LOG_INTERVAL) {
        rd->quiet++;
        return;
    }

    ngx_log_error(NGX_LOG_ERR, log ? log : ngx_cycle->log, 0,
                  "ai_gateway: Redis %V %s failed: %s, not used for a "
                  "while (%ui more errors not logged)",
                  &rd->log_name, what, err ? err : "", rd->quiet);

    rd->logged = ngx_time();
    rd->quiet = 0;
}


/*
 * No later command may run on this connection: it is freed (from a reply
 * callback, hiredis does it when the callback returns) and every command
 * queued on it fails.
 */

static void
ngx_http_ai_gateway_redis_drop(ngx_http_ai_gateway_redis_t *rd,
    redisAsyncContext *ac)
{
    if (rd->ac == ac) {
        rd->ac = NULL;
    }

    redisAsyncFree(ac);
}


/* an error reply for the log: printable bytes, the first word or all */

static void
ngx_http_ai_gateway_redis_error_text(u_char *buf, size_t size, char *s,
    size_t len, ngx_uint_t word)
{
    u_char  *p, *last;

    p = buf;
    last = buf + size - 1;

    while (len-- && p < last) {

        if (*s == ' ' && word) {
            break;
        }

        *p++ = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        s++;
    }

    *p = '\0';
}


static void
ngx_http_ai_gateway_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_ai_gateway_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this */
        ngx_http_ai_gateway_redis_failed(rd, NULL, "connect", ac->errstr);

        if (rd->ac == ac) {
            rd->ac = NULL;
        }
    }
}


static void
ngx_http_ai_gateway_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_ai_gateway_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        ngx_http_ai_gateway_redis_failed(rd, NULL, "connection",
                                         ac->errstr);
    }

    if (rd->ac == ac) {
        rd->ac = NULL;
    }
}


/*
 * The reply to AUTH or SELECT (privdata: which).  Of an AUTH error only the
 * first word is logged (WRONGPASS, NOPERM, ERR...): nothing that could
 * echo the command.
 */

static void
ngx_http_ai_gateway_redis_logged_in(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char                        err[128];
    redisReply                   *reply = r;
    ngx_http_ai_gateway_redis_t  *rd;

    if (reply == NULL) {
        /* the connection failed or is being freed: logged there */
        return;
    }

    if (reply->type == REDIS_REPLY_STATUS) {
        return;
    }

    rd = ac->data;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_ai_gateway_redis_error_text(err, sizeof(err), reply->str,
                                             reply->len,
                                             ngx_strcmp(privdata, "AUTH")
                                             == 0);
    } else {
        (void) ngx_cpystrn(err, (u_char *) "unexpected reply", sizeof(err));
    }

    ngx_http_ai_gateway_redis_failed(rd, NULL, privdata, (char *) err);

    ngx_http_ai_gateway_redis_drop(rd, ac);
}


static void
ngx_http_ai_gateway_redis_got(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_ai_gateway_redis_op_t  *op = privdata;

    void                                  *data;
    u_char                                 err[128], what[16];
    ngx_uint_t                             expect;
    redisReply                            *reply = r;
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_reply_t      rp, *rpp;
    ngx_http_ai_gateway_redis_handler_pt   handler;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    rd = op->rd;
    data = op->data;
    handler = op->handler;
    expect = op->expect;
    ngx_memcpy(what, op->what, sizeof(what));

    ngx_free(op);

    rpp = NULL;

    if (reply == NULL) {
        /* the connection failed or was closed: logged there */
        goto done;
    }

    ngx_memzero(&rp, sizeof(ngx_http_ai_gateway_redis_reply_t));

    switch (reply->type) {

    case REDIS_REPLY_NIL:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_NIL;
        break;

    case REDIS_REPLY_STRING:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_STRING;
        rp.str.data = (u_char *) reply->str;
        rp.str.len = reply->len;
        break;

    case REDIS_REPLY_STATUS:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_STATUS;
        rp.str.data = (u_char *) reply->str;
        rp.str.len = reply->len;
        break;

    case REDIS_REPLY_INTEGER:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_INTEGER;
        rp.integer = reply->integer;
        break;

    case REDIS_REPLY_ERROR:

        if (reply->len >= 6 && ngx_strncmp(reply->str, "NOAUTH", 6) == 0) {
            /* Redis wants a password that was not sent */
            ngx_http_ai_gateway_redis_failed(rd, NULL, "AUTH",
                                             "NOAUTH, no password sent");
            ngx_http_ai_gateway_redis_drop(rd, ac);
            goto done;
        }

        ngx_http_ai_gateway_redis_error_text(err, sizeof(err), reply->str,
                                             reply->len, 0);
        ngx_http_ai_gateway_redis_failed(rd, NULL, (char *) what,
                                         (char *) err);
        goto done;

    default:
        break;
    }

    if (handler && !(rp.type & expect)) {
        ngx_http_ai_gateway_redis_failed(rd, NULL, (char *) what,
                                         "unexpected reply");
        goto done;
    }

    rpp = &rp;

done:

    if (handler && data) {
        handler(data, rpp);
    }
}


/*
 * Redis did not answer in time: the request goes on as after a failure,
 * and the connection is dropped (its pending replies would be late too).
 */

static void
ngx_http_ai_gateway_redis_timeout(ngx_event_t *ev)
{
    ngx_http_ai_gateway_redis_op_t  *op = ev->data;

    void                                  *data;
    redisAsyncContext                     *ac;
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_handler_pt   handler;

    rd = op->rd;
    data = op->data;
    handler = op->handler;

    /* hiredis still owns op and frees it in its callback */

    op->data = NULL;

    ngx_http_ai_gateway_redis_failed(rd, NULL, (char *) op->what,
                                     "timed out");

    if (data) {
        handler(data, NULL);
    }

    ac = rd->ac;

    if (ac) {
        rd->ac = NULL;
        redisAsyncFree(ac);
    }
}


static void
ngx_http_ai_gateway_redis_read(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_ai_gateway_redis_write(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


/*
 * Level-triggered events: hiredis reads at most 16K per call, an entry
 * larger than that needs the event again while bytes are waiting.
 */

static void
ngx_http_ai_gateway_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_ai_gateway_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_ai_gateway_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_ai_gateway_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees the context and closes the socket: the connection goes */

static void
ngx_http_ai_gateway_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    redisAsyncContext            *ac;
    ngx_http_ai_gateway_redis_t  *rd;

    ac = c->data;
    rd = ac->data;

    if (rd && rd->ac == ac) {
        rd->ac = NULL;
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;
}
