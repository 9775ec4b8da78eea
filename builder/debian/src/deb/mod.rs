//! `.deb` packages: the ar container, `control.tar` and `data.tar`, and the tar→tar
//! transform of `data.tar` into layer entries.
