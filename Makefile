# Copyright (C) ngx_ai_gateway contributors

# ngx_ai_gateway: build, run and test the NGINX dynamic module.
#
#   make                 build build/ngx_http_ai_gateway_module.so
#   make run             a gateway on 127.0.0.1:8080 (examples/nginx.conf)
#   make demo            a gateway in front of a local mock provider: no
#                        provider key, no network (make demo-try: curl and
#                        the OpenAI SDK against one, then stopped)
#   make deb             the Debian package libnginx-mod-http-ai-gateway,
#                        in build/deb/, checked by lintian
#   make test            the whole test suite
#   make test-valgrind   the same suite under valgrind
#   make unit            C unit tests of the translators (ASan, UBSan)
#   make fuzz            the translators' libFuzzer targets (FUZZ_SECONDS)
#   make deps            install the Debian packages building and running
#                        need (make deps-node: and Node.js 20 or newer,
#                        for the demo; make deps-test: and the test
#                        toolchain; make deps-deb: and the packaging tools)
#
# NGINX_SRC=/path/to/nginx builds against another nginx source tree; by
# default the tree of Debian's nginx-dev package, with Debian's configure
# flags, so that the module loads into Debian's nginx.

NGINX_SRC    ?= /usr/share/nginx/src
NGINX_BIN    ?= /usr/sbin/nginx
BUILD        := $(CURDIR)/build
MODULE       := $(BUILD)/ngx_http_ai_gateway_module.so
CC_OPT       ?= -g -O2 -fstack-protector-strong -Wformat \
                -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2
LD_OPT       ?= -Wl,-z,relro -Wl,-z,now -fPIC
WARN         := -Wall -Wextra -Werror
PROVE        ?= prove
T            ?= t/

SHELL := /bin/bash

# the one version, from the sources
VERSION := $(shell sed -n 's/^\#define NGX_HTTP_AI_GATEWAY_VERSION  *"\(.*\)"/\1/p' \
                   ngx_ai_gateway/ngx_http_ai_gateway_version.h)

# the gateway "make run" serves: its address and its gateway id, read from
# the configuration itself
RUN_CONF     := examples/nginx.conf
RUN_LISTEN   := $(shell sed -n 's/^ *listen  *\([^ ;]*\).*/\1/p' $(RUN_CONF) | head -1)
RUN_GATEWAY  := $(shell sed -n 's/^ *ai_gateway  *\([^ ;]*\).*/\1/p' $(RUN_CONF) | head -1)

SRCS := $(wildcard ngx_ai_gateway/*.c ngx_ai_gateway/*.h) config

# the dashboard's files, compiled in (util/embed.sh)
DASHBOARD_H := $(BUILD)/nginx/objs/ngx_http_ai_gateway_dashboard_files.h

FUZZ_SECONDS ?= 300

.PHONY: all deps deps-node deps-test deps-deb run demo demo-try deb test \
        test-valgrind unit fuzz clean style version

all: $(MODULE)

version:
	@echo $(VERSION)

deps:
	@sh util/deps.sh run

deps-node:
	@sh util/deps.sh run node

deps-test:
	@sh util/deps.sh run test

deps-deb:
	@sh util/deps.sh run deb

$(BUILD)/nginx/objs/Makefile: config util/configure.sh
	@test -f $(NGINX_SRC)/auto/options || \
	    { echo "no nginx source at $(NGINX_SRC): run 'make deps'" \
	           "or set NGINX_SRC"; exit 1; }
	CC_OPT="$(CC_OPT)" LD_OPT="$(LD_OPT)" \
	    util/configure.sh $(NGINX_SRC) $(BUILD) $(CURDIR)

$(DASHBOARD_H): $(BUILD)/nginx/objs/Makefile $(wildcard dashboard/*) \
                util/embed.sh
	sh util/embed.sh dashboard $@

$(MODULE): $(BUILD)/nginx/objs/Makefile $(SRCS) $(DASHBOARD_H)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules \
	    CFLAGS="$$(sed -n 's/^CFLAGS = //p' \
	                   $(BUILD)/nginx/objs/Makefile) $(WARN)"
	cp $(BUILD)/nginx/objs/ngx_http_ai_gateway_module.so $(MODULE).tmp
	mv -f $(MODULE).tmp $(MODULE)

run: deps $(MODULE)
	mkdir -p $(BUILD)/run/logs
	@echo
	@echo "ai gateway $(VERSION), gateway id \"$(RUN_GATEWAY)\":"
	@echo "    http://$(RUN_LISTEN)/v1/ACCOUNT/$(RUN_GATEWAY)/{provider}/..."
	@echo "e.g. http://$(RUN_LISTEN)/v1/ACCOUNT/$(RUN_GATEWAY)/openai/chat/completions"
	@echo "(any account id; Ctrl-C stops it)"
	@echo
	$(NGINX_BIN) -p $(BUILD)/run/ -c $(CURDIR)/$(RUN_CONF) \
	    -g "load_module $(MODULE); daemon off; pid $(BUILD)/run/nginx.pid;"

# the gateway in front of t/mock/provider.js (--demo): no key, no network
demo: deps-node $(MODULE)
	@sh util/demo.sh serve

demo-try: deps-node $(MODULE) t/sdk/node_modules/.installed
	@sh util/demo.sh try

# the package, built from a copy of the tree in build/deb/ (the version of
# ngx_http_ai_gateway_version.h); lintian must find no error
deb: deps-deb
	sh util/deb.sh $(VERSION)

# the real client SDKs of t/070-sdk.t, from npm
t/sdk/node_modules/.installed: t/sdk/package.json t/sdk/package-lock.json
	cd t/sdk && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the OTLP definitions of the test receiver t/mock/otlp.js, from npm
t/mock/node_modules/.installed: t/mock/package.json t/mock/package-lock.json
	cd t/mock && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: deps-test $(MODULE) t/sdk/node_modules/.installed \
      t/mock/node_modules/.installed
	TEST_NGINX_BINARY=$(NGINX_BIN) TEST_NGINX_LOAD_MODULES=$(MODULE) \
	    $(PROVE) -I t/lib -r $(T)

test-valgrind: deps-test $(MODULE) t/sdk/node_modules/.installed \
               t/mock/node_modules/.installed
	TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_BINARY=$(NGINX_BIN) \
	    TEST_NGINX_LOAD_MODULES=$(MODULE) $(PROVE) -I t/lib -r $(T)

unit: deps-test $(MODULE)
	sh t/unit/run.sh

fuzz: deps-test $(MODULE)
	sh fuzz/run.sh $(FUZZ_SECONDS)

style:
	@sh util/style.sh

clean:
	rm -rf $(BUILD) t/servroot*
