# shellcheck shell=bash
# scripts/interop-config.bash: what `scripts/interop up` writes before it starts anything: the
# PKI, the DNS zones and the configurations of NSD, Unbound, Dovecot and Postfix. It is sourced by
# scripts/interop (run that, not this file) and uses its layout (set_layout).

# ---------------------------------------------------------------------------------------------
# up: PKI

spki_sha256() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | openssl dgst -sha256 -r | cut -d' ' -f1; }
cert_spki_sha256() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }
cert_sha256() { openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }

make_pki() {
	mkdir -p "$PKI"
	(
		cd "$PKI"
		newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
		newkey ca.key
		openssl req -x509 -new -key ca.key -days 7 -subj "/O=smtpsecure interop lab/CN=Test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-addext "subjectKeyIdentifier=hash" -out ca.crt 2>/dev/null
		leaf() { # name cn san
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
			printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
				"extendedKeyUsage=serverAuth" "subjectAltName=$3" "authorityKeyIdentifier=keyid" >"$1.ext"
			# a serial file per leaf (random serial), so that leaves can be made in parallel
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAserial "$1.srl" -CAcreateserial -days 7 \
				-extfile "$1.ext" -out "$1.crt" 2>/dev/null
			cat "$1.crt" ca.crt >"$1-chain.crt"
			rm -f "$1.csr" "$1.ext" "$1.srl"
		}
		local san="" n mxpki
		mx_make_pki &
		mxpki=$!
		for n in $SERVER_NAMES; do san="${san}DNS:$n,"; done
		leaf server "$H_EE" "${san}IP:127.0.0.1,IP:::1"
		leaf wrong "$H_WRONG" "DNS:$H_WRONG"
		newkey unused.key # its digest is published where the TLSA record must not match
		wait "$mxpki"
		chmod 600 ./*.key
		openssl verify -CAfile ca.crt server.crt wrong.crt >/dev/null
	)
	SERVER_SPKI=$(cert_spki_sha256 "$PKI/server.crt")
	CA_SPKI=$(cert_spki_sha256 "$PKI/ca.crt")
	CA_CERT_SHA256=$(cert_sha256 "$PKI/ca.crt")
	UNUSED_SPKI=$(spki_sha256 "$PKI/unused.key")
	mx_tlsa
}

# ---------------------------------------------------------------------------------------------
# up: DNS (NSD authoritative, Unbound validating)

tlsa_rrs() { # owner-host rdata...
	local h=$1 p r
	shift
	for p in $TLSA_PORTS; do
		for r in "$@"; do printf '_%s._tcp.%s. TLSA %s\n' "$p" "$h" "$r"; done
	done
}

addr_rrs() { # name: A, AAAA
	printf '%s. A 127.0.0.1\n' "$1"
	[ "$IPV6" = 0 ] || printf '%s. AAAA ::1\n' "$1"
}
host_rrs() { # name: MX to itself, A, AAAA
	printf '%s. MX 10 %s.\n' "$1" "$1"
	addr_rrs "$1"
}

zone_head() { # origin
	cat <<Z
\$ORIGIN $1.
\$TTL 60
@ SOA ns1.$ZONE. hostmaster.$ZONE. $SERIAL 3600 600 86400 30
@ NS ns1.$ZONE.
Z
}

# sign ZONE FILE OUT [OPTION...]: makes a KSK and a ZSK under keys/, signs FILE into OUT (with
# the ldns-signzone options given); prints the KSK's base name
sign() {
	local k z zone=$1 in=$2 out=$3
	shift 3
	k=$(cd keys && ldns-keygen -r /dev/urandom -a ECDSAP256SHA256 -k "$zone")
	z=$(cd keys && ldns-keygen -r /dev/urandom -a ECDSAP256SHA256 "$zone")
	ldns-signzone -i "$INCEPTION" "$@" -f "$out" "$in" "keys/$k" "keys/$z" && echo "keys/$k"
}

make_dns() {
	mkdir -p "$D/keys"
	(
		cd "$D"
		rm -f keys/*
		SERIAL=$(date +%s)
		local bk tk ee
		INCEPTION=$(date -u -d '-1 day' +%Y%m%d%H%M%S) # a day back: clock skew
		ee="3 1 1 $SERVER_SPKI"
		# bogus.test.example: signed, DS in the parent, then every RRSIG over data is damaged
		{
			zone_head "$BOGUS"
			printf '@ MX 10 mx.%s.\n@ TXT "v=spf1 -all"\n' "$BOGUS"
			addr_rrs "mx.$BOGUS"
			tlsa_rrs "mx.$BOGUS" "$ee"
		} >"$BOGUS.zone"
		bk=$(sign "$BOGUS" "$BOGUS.zone" "$BOGUS.zone.signed")
		awk 'BEGIN { OFS = "\t" }
			$4 == "RRSIG" && $5 ~ /^(A|AAAA|MX|TLSA|TXT)$/ {
				s = $NF; c = substr(s, 10, 1); $NF = substr(s, 1, 9) (c == "A" ? "B" : "A") substr(s, 11)
			}
			{ print }' "$BOGUS.zone.signed" >"$BOGUS.zone.bogus"
		# insecure.test.example: unsigned, delegated without DS (its TLSA records must be ignored)
		{
			zone_head "$INSECURE"
			printf '@ MX 10 mx.%s.\n' "$INSECURE"
			addr_rrs "mx.$INSECURE"
			tlsa_rrs "mx.$INSECURE" "$ee"
		} >"$INSECURE.zone"
		# dane.test.example (signed) and sts.test.example (unsigned): the MX-delivery zones
		mx_make_zones
		# test.example: signed, the trust anchor
		{
			zone_head "$ZONE"
			printf 'ns1 A %s\n' "$NSD_ADDR"
			printf '@ MX 10 %s.\n' "$H_EE"
			printf '@ TXT "v=spf1 -all"\n'
			host_rrs "$H_EE"
			tlsa_rrs "$H_EE" "$ee"
			host_rrs "$H_TA"
			tlsa_rrs "$H_TA" "2 1 1 $CA_SPKI" "2 0 1 $CA_CERT_SHA256"
			host_rrs "$H_EE_BAD"
			tlsa_rrs "$H_EE_BAD" "3 1 1 $UNUSED_SPKI"
			host_rrs "$H_TA_BAD"
			tlsa_rrs "$H_TA_BAD" "2 1 1 $UNUSED_SPKI"
			host_rrs "$H_NOTLSA"
			printf '%s. CNAME %s.\n' "$H_CNAME" "$H_EE"
			printf '%s. CNAME %s.\n' "$H_CNAME_OWN" "$H_NOTLSA"
			tlsa_rrs "$H_CNAME_OWN" "$ee"
			printf '%s. MX 0 .\n' "$H_NULLMX"
			printf '_mta-sts TXT "v=STSv1; id=%s"\n' "$SERIAL"
			printf 'mta-sts A 127.0.0.1\n'
			printf '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@%s"\n' "$ZONE"
			printf '%s. NS ns1.%s.\n' "$BOGUS" "$ZONE"
			cat "$bk.ds"
			printf '%s. NS ns1.%s.\n' "$INSECURE" "$ZONE"
			cat mx-delegations
		} >"$ZONE.zone"
		tk=$(sign "$ZONE" "$ZONE.zone" "$ZONE.zone.signed")
		cp "$tk.ds" "$ZONE.ds"
		cp "$tk.key" "$ZONE.dnskey"
	)
	cat >"$D/nsd.conf" <<N
server:
  ip-address: $NSD_ADDR@$NSD_PORT
  port: $NSD_PORT
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "$D"
  database: ""
  zonelistfile: "$D/zone.list"
  xfrdfile: "$D/xfrd.state"
  xfrdir: "$D"
  pidfile: "$D/nsd.pid"
  logfile: "$D/nsd.log"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: $ZONE.zone.signed
zone:
  name: $BOGUS
  zonefile: $BOGUS.zone.bogus
zone:
  name: $INSECURE
  zonefile: $INSECURE.zone
$(mx_nsd_zones)
N
	cat >"$D/unbound.conf" <<U
server:
  interface: $UB_ADDR@$UB_PORT
  port: $UB_PORT
  interface-automatic: no
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "$D"
  pidfile: "$D/unbound.pid"
  use-syslog: no
  logfile: "$D/unbound.log"
  verbosity: 1
  val-log-level: 2
  num-threads: 1
  module-config: "validator iterator"
  trust-anchor-file: "$D/$ZONE.ds"
  # Only test.example is served; everything else is refused at once instead of timing out on a
  # machine without network (there is no root trust anchor either).
  local-zone: "." refuse
  local-zone: "$ZONE." transparent
  cache-max-ttl: 10
  cache-max-negative-ttl: 5
  val-bogus-ttl: 5
  serve-expired: no
  prefetch: no
  minimal-responses: no
  qname-minimisation: no
  ede: yes
stub-zone:
  name: "$ZONE"
  stub-addr: $NSD_ADDR@$NSD_PORT
remote-control:
  control-enable: yes
  control-interface: "$D/unbound.ctl"
  control-use-cert: no
U
	nsd-checkconf "$D/nsd.conf"
	unbound-checkconf "$D/unbound.conf" >/dev/null
	mx_unbound_conf
}

# ---------------------------------------------------------------------------------------------
# up: Dovecot (SASL server for Postfix only: no IMAP/POP, no network listener)

make_dovecot() {
	mkdir -p "$DV/run" "$DV/state"
	cat >"$DV/dovecot.conf" <<X
protocols =
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
ssl = no
auth_mechanisms = plain login
auth_failure_delay = 0
# Postfix enforces AUTH-after-TLS on every listener but the no-STARTTLS one, where AUTH in the
# clear is offered on purpose as bait; Dovecot must not refuse it there.
disable_plaintext_auth = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN $DV/users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  unix_listener $P/spool/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
X
	printf '%s:{PLAIN}%s\n' "$ALICE_USER" "$ALICE_PASS" "$BOB_USER" "$BOB_PASS" >"$DV/users"
	chgrp dovecot "$DV/users"
	chmod 640 "$DV/users"
}

# ---------------------------------------------------------------------------------------------
# up: Postfix (private instance; config in $P/etc, nothing in /etc/postfix is read or written)

make_postfix() {
	mkdir -p "$P/etc/sasl" "$P/spool" "$P/data" "$P/mail" "$P/sasl"
	chown postfix "$P/data"
	chown 65534:65534 "$P/mail"
	local proto=ipv4
	[ "$IPV6" = 0 ] || proto=all
	cat >"$P/etc/main.cf" <<X
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $P/maillog
maillog_file_prefixes = $P
myhostname = $H_EE
mydomain = $ZONE
myorigin = \$myhostname
# loopback-only names 127.0.0.1 and ::1, but the listeners in master.cf with an address of their
# own (the MX hosts on 127.0.1.x) listen there all the same; Postfix refuses addresses that no
# interface carries here
inet_interfaces = loopback-only
inet_protocols = $proto
# empty: no client may relay without AUTH, not even loopback
mynetworks =
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
smtpd_peername_lookup = no
smtpd_client_port_logging = yes
smtpd_banner = \$myhostname ESMTP smtpsecure interop lab
smtpd_error_sleep_time = 0
in_flow_delay = 0
# the tests send 10 MiB; Postfix's default limit is 10240000 bytes
message_size_limit = 67108864
virtual_mailbox_limit = 67108864
# keep messages as sent: no headers added or rewritten for loopback clients
local_header_rewrite_clients =
always_add_missing_headers = no
# the mail domains are accepted without AUTH, like an MX; AUTH lets mail go anywhere; everything
# that is accepted is delivered to one Maildir, except mail for the MX domains, which goes to a
# Maildir per domain
virtual_mailbox_domains = $MAIL_DOMAINS $MX_DOMAINS
virtual_mailbox_base = $P/mail
virtual_mailbox_maps = regexp:$P/etc/mailboxes
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
default_transport = virtual
relay_transport = virtual
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_chain_files = $PKI/server.key, $PKI/server-chain.crt
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_session_cache_database =
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_authenticated_header = yes
X
	svc() { # name port options...
		local name=$1 port=$2 a
		shift 2
		for a in 127.0.0.1 '[::1]'; do
			[ "$a" = 127.0.0.1 ] || [ "$IPV6" = 1 ] || continue
			printf '%s:%s inet n - n - - smtpd\n  -o syslog_name=postfix/%s\n' "$a" "$port" "$name"
			printf '  -o %s\n' "$@"
		done
	}
	{
		svc starttls "$PORT_STARTTLS" smtpd_tls_security_level=may
		svc implicit "$PORT_IMPLICIT" smtpd_tls_wrappermode=yes smtpd_tls_security_level=encrypt
		svc cyrus "$PORT_CYRUS" smtpd_sasl_type=cyrus smtpd_sasl_path=smtpd
		svc notls "$PORT_NOTLS" smtpd_tls_security_level=none smtpd_tls_auth_only=no
		svc wrongname "$PORT_WRONGNAME" "smtpd_tls_chain_files=$PKI/wrong.key,$PKI/wrong-chain.crt"
		mx_master_cf
		cat <<'X'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
X
	} >"$P/etc/master.cf"
	mx_mailbox_map >"$P/etc/mailboxes"
	# Debian's Postfix reads Cyrus settings from <config_directory>/sasl/<smtpd_sasl_path>.conf
	cat >"$P/etc/sasl/smtpd.conf" <<X
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: $CYRUS_MECHS
sasldb_path: $P/sasl/sasldb2
X
	rm -f "$P/sasl/sasldb2"
	printf '%s' "$ALICE_PASS" | saslpasswd2 -p -c -f "$P/sasl/sasldb2" -u "$ZONE" "${ALICE_USER%@*}"
	printf '%s' "$BOB_PASS" | saslpasswd2 -p -c -f "$P/sasl/sasldb2" -u "$ZONE" "${BOB_USER%@*}"
	chown postfix "$P/sasl/sasldb2"
	chmod 600 "$P/sasl/sasldb2"
	# Postfix's start creates the other queue directories (and checks the configuration); this one
	# must exist before that, for Dovecot's auth socket.
	install -d -o postfix -g root -m 700 "$P/spool/private"
}
