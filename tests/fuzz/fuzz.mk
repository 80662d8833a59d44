# tests/fuzz/fuzz.mk: libFuzzer harnesses for the pure layer, included by the
# Makefile. `make fuzz` builds each harness into build/fuzz/<name> and fuzzes
# it for FUZZ_SECONDS (default 60; CI uses 20) over a scratch copy of its seed
# corpus (build/fuzz/corpus-<name>, so tests/fuzz/corpus stays clean); any
# finding (crash, broken property, leak, timeout) fails the target, and the
# input is left in build/fuzz/artifacts-<name>/. `make fuzz-regress` only runs
# every harness once over its seed corpus (-runs=0): fast, for regressions.
# Every variable here is prefixed FUZZ_.

FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_DIR     := build/fuzz
FUZZ_NAMES   := fuzz_http fuzz_ws fuzz_close fuzz_command fuzz_json fuzz_jwt fuzz_pmd fuzz_pmdz fuzz_api
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)
FUZZ_CC      := clang
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -D_GNU_SOURCE -Iinclude -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# Extra compiler flags for a local build, e.g. FUZZ_EXTRA_CFLAGS=-DFUZZ_OUTSZ_MIN=1.
FUZZ_EXTRA_CFLAGS ?=
# Extra libFuzzer flags for `make fuzz`, e.g. FUZZ_FLAGS=-max_len=16384.
FUZZ_FLAGS   ?=

# The sources each harness needs (and libraries, expanded when it is linked).
FUZZ_SRCS_fuzz_http    := src/http.c src/handshake.c
FUZZ_LIBS_fuzz_http     = $(shell pkg-config --cflags --libs libcrypto)
FUZZ_SRCS_fuzz_ws      := src/ws.c src/utf8.c src/buf.c
FUZZ_SRCS_fuzz_close   := src/ws.c src/utf8.c src/buf.c
FUZZ_SRCS_fuzz_command := src/command.c src/utf8.c
FUZZ_SRCS_fuzz_json    := src/json.c src/buf.c src/utf8.c
FUZZ_SRCS_fuzz_jwt     := src/jwt.c
FUZZ_LIBS_fuzz_jwt      = $(shell pkg-config --cflags --libs libcrypto jansson)
FUZZ_SRCS_fuzz_pmd     := src/pmd.c src/http.c
FUZZ_SRCS_fuzz_pmdz    := src/pmdz.c src/ws.c src/buf.c src/utf8.c src/metrics.c
FUZZ_LIBS_fuzz_pmdz     = $(shell pkg-config --cflags --libs zlib)
FUZZ_SRCS_fuzz_api     := src/api_body.c src/command.c src/utf8.c
FUZZ_LIBS_fuzz_api      = $(shell pkg-config --cflags --libs jansson)

.PHONY: fuzz fuzz-regress fuzz-build fuzz-deps
fuzz-deps: $(FUZZ_DIR)/.deps
$(FUZZ_DIR)/.deps: | $(BUILD)/.deps
	$(call need_debs,clang libclang-rt-14-dev)
	@mkdir -p $(FUZZ_DIR) && touch $@

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_http: $(FUZZ_SRCS_fuzz_http)
$(FUZZ_DIR)/fuzz_ws: $(FUZZ_SRCS_fuzz_ws)
$(FUZZ_DIR)/fuzz_close: $(FUZZ_SRCS_fuzz_close)
$(FUZZ_DIR)/fuzz_command: $(FUZZ_SRCS_fuzz_command)
$(FUZZ_DIR)/fuzz_json: $(FUZZ_SRCS_fuzz_json)
$(FUZZ_DIR)/fuzz_jwt: $(FUZZ_SRCS_fuzz_jwt)
$(FUZZ_DIR)/fuzz_pmd: $(FUZZ_SRCS_fuzz_pmd)
$(FUZZ_DIR)/fuzz_pmdz: $(FUZZ_SRCS_fuzz_pmdz)
$(FUZZ_DIR)/fuzz_api: $(FUZZ_SRCS_fuzz_api)
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_ref.h $(wildcard include/*.h) | $(FUZZ_DIR)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_EXTRA_CFLAGS) $< $(FUZZ_SRCS_fuzz_$*) $(FUZZ_LIBS_fuzz_$*) -o $@

# Fuzzes every harness even when one fails, then fails if any did.
fuzz: $(FUZZ_BINS)
	@failed=""; for n in $(FUZZ_NAMES); do \
	  corpus=$(FUZZ_DIR)/corpus-$$n; art=$(FUZZ_DIR)/artifacts-$$n; log=$(FUZZ_DIR)/$$n.log; \
	  rm -rf $$art; mkdir -p $$corpus $$art; cp -R tests/fuzz/corpus/$$n/. $$corpus/; \
	  echo "== $$n: $(FUZZ_SECONDS)s over $$corpus (log $$log)"; \
	  if ./$(FUZZ_DIR)/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 \
	       -artifact_prefix=$$art/ $(FUZZ_FLAGS) $$corpus >$$log 2>&1; then \
	    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' $$log | sed 's/^/   /'; \
	  else \
	    echo "!! $$n FAILED; its report:"; \
	    grep -E '^==[0-9]+==|^    #[0-9]+ |^SUMMARY|INFO: a leak|ERROR: libFuzzer|Test unit written|^0x' $$log | head -60; \
	    failed="$$failed $$n"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed (inputs in $(FUZZ_DIR)/artifacts-*/)"; exit 1; fi; \
	echo "fuzz: no findings"

# Runs each harness once over its seed corpus, no fuzzing; names the seed
# that failed (libFuzzer names the copy it writes after the input's SHA-1).
fuzz-regress: $(FUZZ_BINS)
	@failed=""; for n in $(FUZZ_NAMES); do \
	  log=$(FUZZ_DIR)/$$n.regress.log; art=$(FUZZ_DIR)/regress-$$n; \
	  rm -rf $$art; mkdir -p $$art; \
	  if ./$(FUZZ_DIR)/$$n -runs=0 -artifact_prefix=$$art/ tests/fuzz/corpus/$$n >$$log 2>&1; then \
	    echo "== $$n: $$(ls tests/fuzz/corpus/$$n | wc -l) seeds ok"; \
	  else \
	    echo "!! $$n FAILED on its seed corpus; its report:"; \
	    grep -E '^==[0-9]+==|^    #[0-9]+ |^SUMMARY|INFO: a leak|ERROR: libFuzzer|^0x' $$log | head -60; \
	    for a in $$art/*; do sha=$${a##*-}; for f in tests/fuzz/corpus/$$n/*; do \
	      [ "$$(sha1sum <"$$f" | cut -c1-40)" = "$$sha" ] && echo "   failing seed: $$f"; done; done; \
	    failed="$$failed $$n"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-regress: failures in:$$failed"; exit 1; fi
