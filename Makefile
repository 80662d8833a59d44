# wshub: `make` builds build/wshub, `make run` serves static/ on port 8080,
# `make test` runs every test. Missing Debian packages are installed with
# apt-get when run as root; otherwise the exact command is printed.

CC       ?= cc
BUILD    ?= build
PORT     ?= 8080
PREFIX   ?= /usr/local
DESTDIR  ?=
UNITDIR  ?= $(PREFIX)/lib/systemd/system
PYTHON   := /usr/bin/python3
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude -D_GNU_SOURCE
ifeq ($(SANITIZE),1)
BUILD    := build/sanitize
CFLAGS_BASE += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS_SAN := -fsanitize=address,undefined
endif

# Debian packages each part needs: build, unit tests, integration tests.
BUILD_DEBS := gcc make pkg-config libssl-dev libjansson-dev libhiredis-dev zlib1g-dev
TEST_DEBS  := check python3 python3-pytest python3-websockets redis-server openssl

define need_debs
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi
endef

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test unit integration browser bench tlsfloor soak clean deps test-deps install uninstall
all: $(BUILD)/wshub

deps: $(BUILD)/.deps
$(BUILD)/.deps:
	$(call need_debs,$(BUILD_DEBS))
	@mkdir -p $(BUILD) && touch $@

test-deps: $(BUILD)/.test-deps
$(BUILD)/.test-deps: | $(BUILD)/.deps
	$(call need_debs,$(TEST_DEBS))
	@mkdir -p $(BUILD) && touch $@

# The libraries the server links (pkg-config names): add a library here.
LIB_PKGS      = libssl libcrypto jansson hiredis zlib
CRYPTO_CFLAGS = $(shell pkg-config --cflags $(LIB_PKGS))
CRYPTO_LIBS   = $(shell pkg-config --libs $(LIB_PKGS))
CHECK_CFLAGS  = $(shell pkg-config --cflags check)
CHECK_LIBS    = $(shell pkg-config --libs check)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h src/*.h) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CRYPTO_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/wshub: $(OBJS)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) $^ $(CRYPTO_LIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/.test-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CHECK_CFLAGS) $(CFLAGS) $< $(LIB_OBJS) $(LDFLAGS_SAN) $(CHECK_LIBS) $(CRYPTO_LIBS) -o $@

# The load generator (bench/wsbench.c): one epoll thread, no dependencies but libcrypto.
$(BUILD)/wsbench: bench/wsbench.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CRYPTO_CFLAGS) $(CFLAGS) $< $(LDFLAGS_SAN) $(CRYPTO_LIBS) -lm -o $@

# What OpenSSL holds per idle connection of the TLS transport (bench/tlsfloor.c,
# a benchmark tool linking src/transport_tls.c as it is): `make tlsfloor`.
$(BUILD)/tlsfloor: bench/tlsfloor.c $(BUILD)/obj/transport_tls.o $(BUILD)/obj/log.o | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CRYPTO_CFLAGS) $(CFLAGS) $^ $(LDFLAGS_SAN) $(CRYPTO_LIBS) -o $@

tlsfloor: $(BUILD)/tlsfloor
	./$(BUILD)/tlsfloor
	./$(BUILD)/tlsfloor --tls12

run: $(BUILD)/wshub
	./$(BUILD)/wshub --port $(PORT) --static static

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=yes ./$$t; done

integration: $(BUILD)/wshub $(if $(wildcard bench/wsbench.c),$(BUILD)/wsbench) $(BUILD)/tlsfloor | $(BUILD)/.test-deps
	WSHUB_BIN=$(abspath $(BUILD)/wshub) WSBENCH_BIN=$(abspath $(BUILD)/wsbench) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# Headless Chromium (Debian's) driven by playwright-core; run.sh installs what is missing.
browser: $(BUILD)/wshub
	WSHUB_BIN=$(abspath $(BUILD)/wshub) tests/browser/run.sh

test: unit integration browser

# Side-by-side benchmarks with the peer servers (see docs/performance.md).
bench: $(BUILD)/wshub $(BUILD)/wsbench
	bench/run.sh

# Soak test: SOAK_SECONDS (default 600) of churn, chat and slow consumers.
soak: $(BUILD)/wshub | $(BUILD)/.test-deps
	WSHUB_BIN=$(abspath $(BUILD)/wshub) scripts/soak.sh $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

# libFuzzer harnesses: `make fuzz` (FUZZ_SECONDS per harness, default 60).
-include tests/fuzz/fuzz.mk

# The binary finds its static files at ../share/wshub/static next to itself.
install: $(BUILD)/wshub
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/wshub $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/wshub $(DESTDIR)$(PREFIX)/bin/wshub
	rm -rf $(DESTDIR)$(PREFIX)/share/wshub/static
	cp -R static $(DESTDIR)$(PREFIX)/share/wshub/static
	chmod -R u=rwX,go=rX $(DESTDIR)$(PREFIX)/share/wshub/static
	sed 's|/usr/local/bin/wshub|$(PREFIX)/bin/wshub|g' scripts/wshub.service > $(DESTDIR)$(UNITDIR)/wshub.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/wshub.service
	@echo "installed; to run it as a service: systemctl daemon-reload && systemctl enable --now wshub"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/wshub $(DESTDIR)$(UNITDIR)/wshub.service
	rm -rf $(DESTDIR)$(PREFIX)/share/wshub

clean:
	rm -rf build
