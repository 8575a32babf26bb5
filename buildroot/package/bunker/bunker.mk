################################################################################
#
# bunker
#
################################################################################

# The sources are the repository this external tree lives in: the image is
# built from the checked-out code, not from a release tarball.
BUNKER_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(BR2_EXTERNAL_BUNKER_PATH)/../Cargo.toml | head -n 1)
BUNKER_SITE = $(realpath $(BR2_EXTERNAL_BUNKER_PATH)/..)
BUNKER_SITE_METHOD = local
BUNKER_LICENSE = AGPL-3.0-or-later
BUNKER_LICENSE_FILES = README.md

# A workspace: build the daemon crate only (both its binaries).
BUNKER_CARGO_BUILD_OPTS = -p bunkerd --bins

# The cargo infrastructure vendors the crates in its download step, which a
# local site skips; vendor them here instead (needs crates.io once; later
# builds reuse Buildroot's cargo home), so that the build step's --offline
# --locked works as for any downloaded cargo package. Before configure, not
# after rsync: only then is host-rustc (and so cargo) built.
define BUNKER_CARGO_VENDOR
	cd $(@D) && \
		$(PKG_COMMON_CARGO_ENV) $(HOST_DIR)/bin/cargo vendor --locked --versioned-dirs VENDOR \
		> $(@D)/cargo-vendor-config.toml
	mkdir -p $(@D)/.cargo
	mv $(@D)/cargo-vendor-config.toml $(@D)/.cargo/config.toml
endef
BUNKER_PRE_CONFIGURE_HOOKS += BUNKER_CARGO_VENDOR

# cargo install does not take a workspace root; install the two binaries
# and the service files, the same ones the Debian image carries.
define BUNKER_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/bunkerd \
		$(TARGET_DIR)/usr/bin/bunkerd
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/bunker \
		$(TARGET_DIR)/usr/bin/bunker
	$(INSTALL) -D -m 0640 $(@D)/firmware/bunkerd/bunker.example.toml \
		$(TARGET_DIR)/etc/bunker/bunker.toml
	$(@D)/systemd/install.sh $(TARGET_DIR)
endef

# The user and groups come from sysusers.d on first boot; Buildroot's own
# user table makes them exist already in the image, so the files above can
# be owned right (see board/bunker/post-build.sh).
define BUNKER_USERS
	- -1 i2c -1 - - - - -
	- -1 gpio -1 - - - - -
	- -1 bunker-disk -1 - - - - -
	bunker -1 bunker -1 * /var/lib/bunker /bin/false i2c,gpio,bunker-disk Bunker storage box daemon
endef

define BUNKER_INSTALL_INIT_SYSTEMD
	mkdir -p $(TARGET_DIR)/etc/systemd/system/multi-user.target.wants
	ln -sf /usr/lib/systemd/system/bunker.service \
		$(TARGET_DIR)/etc/systemd/system/multi-user.target.wants/bunker.service
endef

$(eval $(cargo-package))
