# The two commands of README.md. Both install what they need first.
.PHONY: start test deps bench

deps:
	@bash scripts/install-deps.sh

start: deps
	@./bin/peergate.js start

test: deps
	@npm test

bench: deps
	@npm run bench
