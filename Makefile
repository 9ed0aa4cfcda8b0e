# The two commands of README.md (`make start`, `make test`). Both install what they need first.
# Packaging: `make build` (JavaScript in dist/), `make deb` (Debian package in build/deb/).
.PHONY: start test deps bench build deb clean

deps:
	@bash scripts/install-deps.sh

# Built first: the node then runs the JavaScript in dist/, as the package and the image do (through
# tsx each process would carry the compiler too: tens of MiB and more CPU per process).
start: build
	@node --max-semi-space-size=8 --no-memory-reducer ./bin/peergate.js start

# Built first, so that every `peergate start` in the suite runs the compiled code operators run
# (from the sources each of its processes would compile them through tsx: slower starts, and a
# reload parses in place instead of in its thread).
test: build
	@npm test

bench: deps
	@npm run bench

build: deps
	@npm run --silent build

deb: build
	@bash scripts/build-deb.sh

clean:
	rm -rf dist build/deb
