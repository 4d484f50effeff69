# SPDX-License-Identifier: Apache-2.0
# Thin wrapper over CMake. Every target first installs missing system packages.
BUILD       ?= build
CHECK_BUILD ?= build-check
BENCH_BUILD ?= build-bench
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_RUNS   ?= 500000

.PHONY: all deps build demo check bench format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTSE_TESTS=ON -DTSE_FUZZ=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# An end-to-end session on a freshly created emulated card.
demo: build
	@scripts/demo.sh $(BUILD)

# The gcc build (warnings are errors there too), then a sanitized clang build (ASan + UBSan)
# in which every test runs through ctest, fuzzers included.
check: build
	@CC=clang cmake -S . -B $(CHECK_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DTSE_SANITIZE=ON \
		-DTSE_FUZZ=ON -DTSE_FUZZ_RUNS=$(FUZZ_RUNS) >/dev/null
	@cmake --build $(CHECK_BUILD) -j $(JOBS)
	@rm -rf $(CHECK_BUILD)/tests/tmp && mkdir -p $(CHECK_BUILD)/tests/tmp
	@cd $(CHECK_BUILD) && ctest --output-on-failure -j $(JOBS); rc=$$?; \
		cd .. && scripts/test-summary.sh $(CHECK_BUILD); exit $$rc

# Release build (-O3, no tests) of the library, tse-card and the benchmarks, then every figure
# of docs/performance.md: a table on stdout, JSON in $(BENCH_BUILD)/bench/bench.json.
bench: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DTSE_TESTS=OFF -DTSE_FUZZ=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target tse-bench tse-bench-pcsc tse-card
	@scripts/bench.sh $(BENCH_BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) $(BENCH_BUILD)
