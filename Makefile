# `make && make install` builds mod_rustapp and installs it into Debian's Apache (install as
# root); `make test` runs the whole test suite. The scripts do the work; see scripts/install.
.PHONY: all install test

all:
	cargo build --release --workspace

install: all
	scripts/install

test:
	scripts/test
