# shellcheck shell=bash
# scripts/interop-mx.bash: the MX-delivery part of the interop lab. It is sourced by
# scripts/interop (run that, not this file) and uses its layout and helpers.
#
# It adds, beside the submission listeners and the test.example zones:
#   - two zones delegated from test.example: dane.test.example (signed, NSEC3, DS in the parent)
#     and sts.test.example (unsigned, no DS), with recipient domains whose MX, A and _25._tcp
#     TLSA records, _mta-sts and _smtp._tls TXT records make one delivery case each;
#   - Postfix listening on port 25 of one loopback address per MX host, each with its own
#     certificate from the lab CA and its own Maildir per recipient domain;
#   - nginx serving the MTA-STS policies over HTTPS on port 443 of one loopback address per
#     policy host (mta-sts.<domain>), with lab-CA certificates;
#   - a second Unbound that does not validate (module-config "iterator") but passes DNSSEC
#     records through, for checking the library's own DNSSEC validation against Unbound's.
# scripts/README.md documents every name, address, variable and expected outcome.

# ---------------------------------------------------------------------------------------------
# layout

# mx_layout sets the names and addresses of the MX part; set_layout calls it once PORT_OFFSET,
# ZONE and the directories are set.
mx_layout() {
	local off=$PORT_OFFSET n
	# Ports 25 and 443 cannot move, so each lab has two /24s of 127.0.0.0/8 of its own, derived
	# from the port offset: MX hosts in block 2·offset+1, policy hosts in block 2·offset+2
	# (offset 0: 127.0.1.0/24 and 127.0.2.0/24; offset 1000: 127.7.209.0/24 and 127.7.210.0/24).
	n=$((2 * off + 1))
	MX_NET=127.$((n >> 8)).$((n & 255))
	n=$((2 * off + 2))
	STS_NET=127.$((n >> 8)).$((n & 255))
	NV_ADDR=127.0.0.4 NV_PORT=$((5353 + off))
	NGX=$B/nginx
	DANE_ZONE=dane.$ZONE STS_ZONE=sts.$ZONE
	STS_MAX_AGE=86400
	TLSRPT_ADDRESS=tlsrpt@reports.$DANE_ZONE

	# MX hosts: variable stem, host name, last octet of the address, Postfix listener name
	declare -gA MXH_NAME=() MXH_IP=() MXH_LISTENER=() MXH_TLSA=()
	MX_KEYS=()
	_mx_host() {
		MX_KEYS+=("$1")
		MXH_NAME[$1]=$2 MXH_IP[$1]=$MX_NET.$3 MXH_LISTENER[$1]=$4
	}
	_mx_host MX_DANE "mx1.$DANE_ZONE" 10 mx1-dane
	_mx_host MX_DANE_BAD "mx-bad.$DANE_ZONE" 11 mx-bad-dane
	_mx_host MX_PKIX "mx-pkix.$DANE_ZONE" 12 mx-pkix-dane
	_mx_host MX_STS "mx1.$STS_ZONE" 13 mx1-sts
	_mx_host MX_STS_OTHER "mx2.$STS_ZONE" 14 mx2-sts

	# Recipient domains: variable stem, domain, MX hosts in preference order (10, 20, ...),
	# expected Deliver outcome ("delivered MX-HOST TLS" or "refused - -"), and for MTA-STS
	# domains the policy mode, its mx patterns and the last octet of the policy host's address.
	declare -gA DOM_NAME=() DOM_MX=() DOM_EXPECT=() DOM_MODE=() DOM_POLICY_MX=() DOM_POLICY_IP=() DOM_TLSRPT=()
	DOM_KEYS=()
	_mx_domain() {
		DOM_KEYS+=("$1")
		DOM_NAME[$1]=$2 DOM_MX[$1]=$3 DOM_EXPECT[$1]=$4
	}
	local dane=${MXH_NAME[MX_DANE]} bad=${MXH_NAME[MX_DANE_BAD]} pkix=${MXH_NAME[MX_PKIX]}
	local sts=${MXH_NAME[MX_STS]} sts2=${MXH_NAME[MX_STS_OTHER]}
	_mx_domain DANE_DOMAIN "$DANE_ZONE" "$dane" "delivered $dane dane-ee"
	_mx_domain FAILOVER_DOMAIN "failover.$DANE_ZONE" "$bad $dane" "delivered $dane dane-ee"
	_mx_domain UNUSABLE_TLSA_DOMAIN "pkix.$DANE_ZONE" "$pkix" "delivered $pkix tls"
	_mx_domain REPORTS_DOMAIN "reports.$DANE_ZONE" "$dane" "delivered $dane dane-ee"
	_mx_domain STS_ENFORCE_DOMAIN "enforce.$STS_ZONE" "$sts" "delivered $sts webpki"
	_mx_domain STS_MISMATCH_DOMAIN "mismatch.$STS_ZONE" "$sts2" "refused - -"
	_mx_domain STS_TESTING_DOMAIN "testing.$STS_ZONE" "$sts2" "delivered $sts2 tls"
	_mx_domain NO_POLICY_DOMAIN "nopolicy.$STS_ZONE" "$sts2" "delivered $sts2 tls"
	_mx_policy() { DOM_MODE[$1]=$2 DOM_POLICY_MX[$1]=$3 DOM_POLICY_IP[$1]=$STS_NET.$4; }
	_mx_policy STS_ENFORCE_DOMAIN enforce "$sts" 10
	_mx_policy STS_MISMATCH_DOMAIN enforce "$sts" 11
	_mx_policy STS_TESTING_DOMAIN testing "$sts" 12
	DOM_TLSRPT[FAILOVER_DOMAIN]="mailto:$TLSRPT_ADDRESS"
	DOM_TLSRPT[STS_TESTING_DOMAIN]="mailto:$TLSRPT_ADDRESS"

	local k
	MX_DOMAINS="" MX_ADDRS="" STS_POLICY_ADDRS="" TLSRPT_DOMAINS=""
	for k in "${DOM_KEYS[@]}"; do
		MX_DOMAINS="$MX_DOMAINS ${DOM_NAME[$k]}"
		[ -z "${DOM_POLICY_IP[$k]:-}" ] || STS_POLICY_ADDRS="$STS_POLICY_ADDRS ${DOM_POLICY_IP[$k]}:443"
		[ -z "${DOM_TLSRPT[$k]:-}" ] || TLSRPT_DOMAINS="$TLSRPT_DOMAINS ${DOM_NAME[$k]}"
	done
	for k in "${MX_KEYS[@]}"; do MX_ADDRS="$MX_ADDRS ${MXH_IP[$k]}:25"; done
	MX_DOMAINS=${MX_DOMAINS# } MX_ADDRS=${MX_ADDRS# } STS_POLICY_ADDRS=${STS_POLICY_ADDRS# } TLSRPT_DOMAINS=${TLSRPT_DOMAINS# }
}

mx_maildir() { printf '%s/mail/%s' "$P" "$1"; }  # domain -> its Maildir
mx_policy_host() { printf 'mta-sts.%s' "$1"; }     # domain -> its MTA-STS policy host
mx_re() { printf '%s' "${1//./\\.}"; }             # a name as an extended regular expression
mx_key_file() { printf '%s' "${1,,}" | tr _ - ; }  # variable stem -> file name stem under pki/

# ---------------------------------------------------------------------------------------------
# up: PKI (run by make_pki in its subshell, in $PKI, with its newkey and leaf functions, in the
# background; every leaf is made in parallel)

mx_make_pki() {
	local k f files=() pids=() p
	for k in "${MX_KEYS[@]}"; do
		f=$(mx_key_file "$k")
		leaf "$f" "${MXH_NAME[$k]}" "DNS:${MXH_NAME[$k]}" &
		pids+=($!) files+=("$f.crt")
	done
	for k in "${DOM_KEYS[@]}"; do
		[ -n "${DOM_POLICY_IP[$k]:-}" ] || continue
		f=$(mx_key_file "$k")-policy
		leaf "$f" "$(mx_policy_host "${DOM_NAME[$k]}")" "DNS:$(mx_policy_host "${DOM_NAME[$k]}")" &
		pids+=($!) files+=("$f.crt")
	done
	for p in "${pids[@]}"; do wait "$p"; done
	openssl verify -CAfile ca.crt "${files[@]}" >/dev/null
}

# mx_tlsa sets MXH_TLSA: the _25._tcp TLSA records of each MX host in the signed zone (after
# make_pki): a DANE-EE record of its key; the unused key's for the mismatch; PKIX-EE of its key
# and PKIX-TA of the CA (both unusable for SMTP) for the host with only unusable records.
mx_tlsa() {
	local k
	for k in "${MX_KEYS[@]}"; do
		case $k in
		MX_DANE) MXH_TLSA[$k]="3 1 1 $(spki_sha256 "$PKI/$(mx_key_file "$k").key")" ;;
		MX_DANE_BAD) MXH_TLSA[$k]="3 1 1 $UNUSED_SPKI" ;;
		MX_PKIX) MXH_TLSA[$k]="1 1 1 $(spki_sha256 "$PKI/$(mx_key_file "$k").key");0 1 1 $CA_SPKI" ;;
		*) MXH_TLSA[$k]="" ;;
		esac
	done
}

# ---------------------------------------------------------------------------------------------
# up: DNS

# mx_zone_records ZONE prints the records of the MX part that belong in ZONE: each domain's MX,
# _mta-sts TXT, mta-sts A and _smtp._tls TXT, each MX host's A and TLSA records.
mx_zone_records() {
	local z=$1 k d h pref r
	for k in "${DOM_KEYS[@]}"; do
		d=${DOM_NAME[$k]}
		case $d in "$z" | *".$z") ;; *) continue ;; esac
		pref=10
		for h in ${DOM_MX[$k]}; do
			printf '%s. MX %s %s.\n' "$d" "$pref" "$h"
			pref=$((pref + 10))
		done
		if [ -n "${DOM_MODE[$k]:-}" ]; then
			printf '_mta-sts.%s. TXT "v=STSv1; id=%s"\n' "$d" "$SERIAL"
			printf '%s. A %s\n' "$(mx_policy_host "$d")" "${DOM_POLICY_IP[$k]}"
		fi
		[ -z "${DOM_TLSRPT[$k]:-}" ] || printf '_smtp._tls.%s. TXT "v=TLSRPTv1; rua=%s"\n' "$d" "${DOM_TLSRPT[$k]}"
	done
	for k in "${MX_KEYS[@]}"; do
		h=${MXH_NAME[$k]}
		case $h in *".$z") ;; *) continue ;; esac
		printf '%s. A %s\n' "$h" "${MXH_IP[$k]}"
		while read -r r; do
			[ -z "$r" ] || printf '_25._tcp.%s. TLSA %s\n' "$h" "$r"
		done < <(tr ';' '\n' <<<"${MXH_TLSA[$k]}")
	done
}

# mx_make_zones (in $D, inside make_dns's subshell): writes and signs the two zones and prints
# the delegation records (NS, and DS for the signed one) that go into test.example.
mx_make_zones() {
	local dk
	{
		zone_head "$DANE_ZONE"
		mx_zone_records "$DANE_ZONE"
	} >"$DANE_ZONE.zone"
	# NSEC3 as RFC 9276 recommends (no extra iterations, no salt), so that both denial kinds exist
	# in the lab: test.example and bogus.test.example use NSEC.
	dk=$(sign "$DANE_ZONE" "$DANE_ZONE.zone" "$DANE_ZONE.zone.signed" -n -t 0)
	{
		zone_head "$STS_ZONE"
		mx_zone_records "$STS_ZONE"
	} >"$STS_ZONE.zone"
	printf '%s\n' "$SERIAL" >mx-sts-id # the id of every _mta-sts record, for env
	printf '%s. NS ns1.%s.\n' "$DANE_ZONE" "$ZONE" >mx-delegations
	cat "$dk.ds" >>mx-delegations
	printf '%s. NS ns1.%s.\n' "$STS_ZONE" "$ZONE" >>mx-delegations
}

mx_nsd_zones() {
	printf 'zone:\n  name: %s\n  zonefile: %s\n' "$DANE_ZONE" "$DANE_ZONE.zone.signed" "$STS_ZONE" "$STS_ZONE.zone"
}

# The non-validating resolver: Unbound with the iterator only and the same refusal of
# everything outside test.example. Asked with DO it returns RRSIG, DNSKEY, DS and NSEC/NSEC3
# records as NSD serves them, validated by nobody (AD is never set). It forwards to NSD rather
# than iterating from a stub: an iterating Unbound without the validator times out on a DS query
# for a name below a zone cut that is not itself a cut (mx.bogus.test.example DS: 10 s, then
# nothing), which a validator walking down from its anchor asks; NSD answers it at once with the
# NSEC denial.
mx_unbound_conf() {
	cat >"$D/unbound-nv.conf" <<U
server:
  interface: $NV_ADDR@$NV_PORT
  port: $NV_PORT
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
  pidfile: "$D/unbound-nv.pid"
  use-syslog: no
  logfile: "$D/unbound-nv.log"
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  local-zone: "." refuse
  local-zone: "$ZONE." transparent
  cache-max-ttl: 10
  cache-max-negative-ttl: 5
  serve-expired: no
  prefetch: no
  minimal-responses: no
  qname-minimisation: no
  ede: yes
forward-zone:
  name: "$ZONE"
  forward-addr: $NSD_ADDR@$NSD_PORT
remote-control:
  control-enable: no
U
	unbound-checkconf "$D/unbound-nv.conf" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# up: Postfix (the MX listeners, in the instance make_postfix writes)

# mx_master_cf prints the master.cf entries of the MX hosts: port 25 of each host's address,
# its own name in the banner and the Received field, its own certificate, no AUTH (an MX).
mx_master_cf() {
	local k f
	for k in "${MX_KEYS[@]}"; do
		f=$PKI/$(mx_key_file "$k")
		printf '%s:25 inet n - n - - smtpd\n' "${MXH_IP[$k]}"
		printf '  -o %s\n' "syslog_name=postfix/${MXH_LISTENER[$k]}" "myhostname=${MXH_NAME[$k]}" \
			"smtpd_tls_chain_files=$f.key,$f-chain.crt" smtpd_tls_security_level=may smtpd_sasl_auth_enable=no
	done
}

# mx_mailbox_map prints a regexp table for virtual_mailbox_maps: a Maildir per MX domain, the
# catch-all Maildir for everything else (as before).
mx_mailbox_map() {
	local k d
	for k in "${DOM_KEYS[@]}"; do
		d=${DOM_NAME[$k]}
		printf '/@%s$/ %s/\n' "${d//./\\.}" "$d"
	done
	printf '/./ catchall/\n'
}

mx_postfix_listening() {
	local have k
	have=" $(ss -Hltn 2>/dev/null | awk '{ print $4 }' | tr '\n' ' ') "
	for k in "${MX_KEYS[@]}"; do
		case $have in *" ${MXH_IP[$k]}:25 "*) ;; *) return 1 ;; esac
	done
}

# ---------------------------------------------------------------------------------------------
# up: nginx (MTA-STS policy hosts)

mx_make_nginx() {
	local k d h w
	mkdir -p "$NGX/tmp" "$NGX/www"
	{
		cat <<X
user www-data;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events {
  worker_connections 64;
}
http {
  access_log $NGX/access.log;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server_tokens off;
  ssl_protocols TLSv1.2 TLSv1.3;
X
		for k in "${DOM_KEYS[@]}"; do
			[ -n "${DOM_POLICY_IP[$k]:-}" ] || continue
			d=${DOM_NAME[$k]} h=$(mx_policy_host "$d") w=$NGX/www/$h
			mkdir -p "$w/.well-known"
			printf 'version: STSv1\nmode: %s\nmx: %s\nmax_age: %s\n' "${DOM_MODE[$k]}" "${DOM_POLICY_MX[$k]}" "$STS_MAX_AGE" >"$w/.well-known/mta-sts.txt"
			cat <<X
  server {
    listen ${DOM_POLICY_IP[$k]}:443 ssl;
    server_name $h;
    ssl_certificate $PKI/$(mx_key_file "$k")-policy-chain.crt;
    ssl_certificate_key $PKI/$(mx_key_file "$k")-policy.key;
    root $w;
    location = /.well-known/mta-sts.txt {
      default_type text/plain;
    }
    location / {
      return 404;
    }
  }
X
		done
		printf '}\n'
	} >"$NGX/nginx.conf"
	chmod -R go+rX "$NGX/www"
	nginx -t -q -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf"
}

mx_nginx_listening() {
	local have a
	have=" $(ss -Hltn 2>/dev/null | awk '{ print $4 }' | tr '\n' ' ') "
	for a in $STS_POLICY_ADDRS; do
		case $have in *" $a "*) ;; *) return 1 ;; esac
	done
}

mx_nv_answers() { dig +dnssec +cd +time=1 +tries=1 @"$NV_ADDR" -p "$NV_PORT" "$DANE_ZONE" MX | grep -q 'status: NOERROR'; }

# mx_start: after NSD and the validating Unbound have been started
mx_start() {
	start_daemon nginx "$NGX/stdout" nginx -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" -g 'daemon off;'
	start_daemon unbound-nv "$D/unbound-nv.stdout" unbound -d -c "$D/unbound-nv.conf"
}

mx_wait() {
	wait_for "nginx's policy hosts" 30 mx_nginx_listening
	wait_for "the non-validating Unbound" 30 mx_nv_answers
	wait_for "Postfix's MX listeners" 30 mx_postfix_listening
}

mx_ports_wanted() { # the address:port patterns of ports_in_use for the MX part
	local a p="" w
	for a in $MX_ADDRS $STS_POLICY_ADDRS; do p="$p|${a//./\\.}"; done
	for w in 25 443; do p="$p|0\.0\.0\.0:$w|\*:$w|\[::\]:$w"; done
	printf '%s|%s|0\\.0\\.0\\.0:%s|\\*:%s' "$p" "${NV_ADDR//./\\.}:$NV_PORT" "$NV_PORT" "$NV_PORT"
}

mx_logs() { printf '%s\n' "$NGX/error.log" "$NGX/stdout" "$D/unbound-nv.log" "$D/unbound-nv.stdout"; }

# ---------------------------------------------------------------------------------------------
# env

mx_env() { # prints NAME=VALUE lines
	local k d h
	printf '%s\n' \
		"DANE_ZONE=$DANE_ZONE" \
		"STS_ZONE=$STS_ZONE" \
		"MX_DOMAINS=$MX_DOMAINS" \
		"MX_ADDRS=$MX_ADDRS" \
		"STS_POLICY_ADDRS=$STS_POLICY_ADDRS" \
		"STS_POLICY_ID=$(cat "$D/mx-sts-id")" \
		"STS_MAX_AGE=$STS_MAX_AGE" \
		"TLSRPT_DOMAINS=$TLSRPT_DOMAINS" \
		"TLSRPT_RUA=mailto:$TLSRPT_ADDRESS" \
		"TLSRPT_ADDRESS=$TLSRPT_ADDRESS" \
		"TLSRPT_MAILDIR=$(mx_maildir "${TLSRPT_ADDRESS#*@}")" \
		"NONVALIDATING_RESOLVER_ADDR=$NV_ADDR:$NV_PORT"
	for k in "${MX_KEYS[@]}"; do
		printf '%s\n' \
			"${k}_HOST=${MXH_NAME[$k]}" \
			"${k}_ADDR=${MXH_IP[$k]}:25" \
			"${k}_LISTENER=${MXH_LISTENER[$k]}" \
			"${k}_TLSA=${MXH_TLSA[$k]}"
	done
	for k in "${DOM_KEYS[@]}"; do
		d=${DOM_NAME[$k]}
		printf '%s\n' "$k=$d" "${k}_MX=${DOM_MX[$k]}" "${k}_MAILDIR=$(mx_maildir "$d")" "${k}_EXPECT=${DOM_EXPECT[$k]}"
		[ -n "${DOM_MODE[$k]:-}" ] || continue
		h=$(mx_policy_host "$d")
		printf '%s\n' "${k}_POLICY_HOST=$h" "${k}_POLICY_ADDR=${DOM_POLICY_IP[$k]}:443" \
			"${k}_POLICY_MODE=${DOM_MODE[$k]}" "${k}_POLICY_MX=${DOM_POLICY_MX[$k]}" \
			"${k}_POLICY_FILE=$NGX/www/$h/.well-known/mta-sts.txt"
	done
}

# ---------------------------------------------------------------------------------------------
# check

mx_check() {
	local k d h a ip f mid i re
	local SW=(swaks --helo client.test --from "$ALICE_USER" --tls --tls-verify --tls-ca-path "$CA" --timeout 30 -p 25)
	local DIG=(dig +dnssec +time=2 +tries=1 @"$UB_ADDR" -p "$UB_PORT")
	local NV=(dig +dnssec +cd +time=2 +tries=1 @"$NV_ADDR" -p "$NV_PORT")
	for k in "${MX_KEYS[@]}"; do # as up published them
		a=SMTPSECURE_LAB_${k}_TLSA
		MXH_TLSA[$k]=${!a}
	done

	# --- each MX host: STARTTLS with its own lab-CA certificate, delivery into the Maildir of
	# the domain, with the host's name in the Received field
	for k in "${MX_KEYS[@]}"; do
		h=${MXH_NAME[$k]} ip=${MXH_IP[$k]}
		for d in "${DOM_KEYS[@]}"; do
			case " ${DOM_MX[$d]} " in *" $h "*) d=${DOM_NAME[$d]}; break ;; esac
		done
		mid="mx.$k.$id@client.test"
		t "MX $h ($ip:25): STARTTLS, lab CA, mail for $d accepted" ' 250 2\.0\.0 Ok: queued' \
			"${SW[@]}" --server "$ip" --tls-sni "$h" --to "check@$d" --header "Message-Id: <$mid>"
		if f=$(MAILDIR=$(mx_maildir "$d") maildir_find "<$mid>") && grep -q "by $h (Postfix) with ESMTPS" "$f"; then
			ok "MX $h: delivered into $(mx_maildir "$d" | sed "s|^$B/||"), received by $h over TLS"
		else
			ko "MX $h: delivered into the Maildir of $d, received by $h over TLS" "$(head -n 12 "${f:-/dev/null}")"
		fi
		t "MX $h: certificate verifies for $h (openssl)" 'Verification: OK' \
			openssl s_client -starttls smtp -connect "$ip:25" -servername "$h" -CAfile "$CA" -verify_hostname "$h" -verify_return_error -brief
	done
	a=$("${SW[@]}" --server "${MXH_IP[MX_DANE]}" --tls-sni "${MXH_NAME[MX_DANE]}" --quit-after HELO 2>&1 </dev/null) || true
	if grep -q '<-  250[- ]STARTTLS' <<<"$a" && ! grep -q '250[- ]AUTH' <<<"$a"; then
		ok "MX ${MXH_NAME[MX_DANE]}: STARTTLS offered, AUTH not offered (before or after STARTTLS)"
	else
		ko "MX ${MXH_NAME[MX_DANE]}: STARTTLS offered, AUTH not offered (before or after STARTTLS)" "$a"
	fi
	mid="rua.$id@client.test"
	t "TLS-RPT address $TLSRPT_ADDRESS: accepted by ${MXH_NAME[MX_DANE]}" ' 250 2\.0\.0 Ok: queued' \
		"${SW[@]}" --server "${MXH_IP[MX_DANE]}" --tls-sni "${MXH_NAME[MX_DANE]}" --to "$TLSRPT_ADDRESS" --header "Message-Id: <$mid>"
	if MAILDIR=$(mx_maildir "${TLSRPT_ADDRESS#*@}") maildir_find "<$mid>" >/dev/null; then
		ok "TLS-RPT address: delivered into TLSRPT_MAILDIR"
	else
		ko "TLS-RPT address: delivered into TLSRPT_MAILDIR" "$(tail -n 5 "$MAILLOG")"
	fi

	# --- DANE with OpenSSL, the records as Unbound returns them (dane, defined by cmd_check)
	dane "MX DANE-EE (openssl): ${MXH_NAME[MX_DANE]}:25 verifies" 'Verification: OK.*DANE TLSA 3 1 1 [^\n]* matched EE certificate' \
		"${MXH_NAME[MX_DANE]}" 25 "${MXH_IP[MX_DANE]}"
	dane "MX DANE-EE mismatch (openssl): ${MXH_NAME[MX_DANE_BAD]}:25 fails" 'num=65:no matching DANE TLSA records' \
		"${MXH_NAME[MX_DANE_BAD]}" 25 "${MXH_IP[MX_DANE_BAD]}"
	# PKIX-EE and PKIX-TA are unusable for SMTP (RFC 7672 §3.1.3), but they are correct: with
	# PKIX semantics (the lab CA trusted) OpenSSL finds them matching.
	dane "MX PKIX-EE/PKIX-TA records (openssl, PKIX rules) match ${MXH_NAME[MX_PKIX]}:25" 'Verification: OK.*DANE TLSA [01] 1 1 [^\n]* matched' \
		"${MXH_NAME[MX_PKIX]}" 25 "${MXH_IP[MX_PKIX]}"
	for k in MX_DANE MX_DANE_BAD MX_PKIX; do
		h=${MXH_NAME[$k]}
		re=$(tr ';' '\n' <<<"${MXH_TLSA[$k]}" | sort | tr '\n' '|')
		a=$("${DIG[@]}" +short "_25._tcp.$h" TLSA 2>&1 | awk '$1 ~ /^[0-9]+$/ { d = ""; for (i = 4; i <= NF; i++) d = d $i; print $1, $2, $3, tolower(d) }' | sort | tr '\n' '|') || true
		if [ "$a" = "$re" ]; then ok "secure: _25._tcp.$h TLSA = $(tr '|' ' ' <<<"$a" | cut -c1-40)..."; else ko "_25._tcp.$h TLSA is $re" "$a"; fi
		t "secure: _25._tcp.$h TLSA has AD" 'status: NOERROR.*flags:[^;]* ad;' "${DIG[@]}" "_25._tcp.$h" TLSA
	done

	# --- policy hosts: curl with the lab CA, the name resolved to the policy host's address
	for k in "${DOM_KEYS[@]}"; do
		[ -n "${DOM_MODE[$k]:-}" ] || continue
		d=${DOM_NAME[$k]} h=$(mx_policy_host "$d")
		t "policy https://$h/.well-known/mta-sts.txt: 200 text/plain, mode ${DOM_MODE[$k]}, mx ${DOM_POLICY_MX[$k]}" \
			"^version: STSv1.mode: ${DOM_MODE[$k]}.mx: ${DOM_POLICY_MX[$k]//./\\.}.max_age: $STS_MAX_AGE..200 text/plain.$" \
			curl -sS --max-time 20 --cacert "$CA" --resolve "$h:443:${DOM_POLICY_IP[$k]}" \
			-w '\n%{http_code} %{content_type}\n' "https://$h/.well-known/mta-sts.txt"
	done
	h=$(mx_policy_host "${DOM_NAME[STS_ENFORCE_DOMAIN]}")
	t "policy host $h: another path is 404" '^404' \
		curl -sS --max-time 20 --cacert "$CA" --resolve "$h:443:${DOM_POLICY_IP[STS_ENFORCE_DOMAIN]}" -o /dev/null -w '%{http_code}' "https://$h/"

	# --- DNS through the validating Unbound
	t "secure: $DANE_ZONE MX has AD" 'status: NOERROR.*flags:[^;]* ad;' "${DIG[@]}" "$DANE_ZONE" MX
	t "secure: ${DOM_NAME[FAILOVER_DOMAIN]} MX: 10 ${MXH_NAME[MX_DANE_BAD]}, 20 ${MXH_NAME[MX_DANE]}" \
		"flags:[^;]* ad;.*(MX[[:space:]]+10 $(mx_re "${MXH_NAME[MX_DANE_BAD]}")\..*MX[[:space:]]+20 $(mx_re "${MXH_NAME[MX_DANE]}")\.|MX[[:space:]]+20 $(mx_re "${MXH_NAME[MX_DANE]}")\..*MX[[:space:]]+10 $(mx_re "${MXH_NAME[MX_DANE_BAD]}")\.)" \
		"${DIG[@]}" "${DOM_NAME[FAILOVER_DOMAIN]}" MX
	t "secure: ${MXH_NAME[MX_DANE]} A is ${MXH_IP[MX_DANE]} with AD" "flags:[^;]* ad;.*A[[:space:]]+${MXH_IP[MX_DANE]//./\\.}" "${DIG[@]}" "${MXH_NAME[MX_DANE]}" A
	t "secure: NXDOMAIN with AD and NSEC3 in $DANE_ZONE" 'status: NXDOMAIN.*flags:[^;]* ad;.*NSEC3' "${DIG[@]}" "nx.$DANE_ZONE" A
	t "secure: _smtp._tls.${DOM_NAME[FAILOVER_DOMAIN]} TXT with AD" "flags:[^;]* ad;.*v=TLSRPTv1; rua=mailto:$TLSRPT_ADDRESS" \
		"${DIG[@]}" "_smtp._tls.${DOM_NAME[FAILOVER_DOMAIN]}" TXT
	t "insecure: ${DOM_NAME[STS_ENFORCE_DOMAIN]} MX without AD" "status: NOERROR.*flags: qr rd ra;.*MX[[:space:]]+10 ${MXH_NAME[MX_STS]//./\\.}\." \
		"${DIG[@]}" "${DOM_NAME[STS_ENFORCE_DOMAIN]}" MX
	for k in STS_ENFORCE_DOMAIN STS_MISMATCH_DOMAIN STS_TESTING_DOMAIN; do
		d=${DOM_NAME[$k]}
		t "insecure: _mta-sts.$d TXT v=STSv1; id=$SMTPSECURE_LAB_STS_POLICY_ID" "flags: qr rd ra;.*v=STSv1; id=$SMTPSECURE_LAB_STS_POLICY_ID" "${DIG[@]}" "_mta-sts.$d" TXT
		t "insecure: mta-sts.$d A ${DOM_POLICY_IP[$k]}" "flags: qr rd ra;.*A[[:space:]]+${DOM_POLICY_IP[$k]//./\\.}" "${DIG[@]}" "mta-sts.$d" A
	done
	t "insecure: no _mta-sts for ${DOM_NAME[NO_POLICY_DOMAIN]} (NXDOMAIN)" 'status: NXDOMAIN' "${DIG[@]}" "_mta-sts.${DOM_NAME[NO_POLICY_DOMAIN]}" TXT

	# --- DNS through the non-validating Unbound, asked with DO and CD: the DNSSEC records pass,
	# AD is never set, the bogus zone is not refused
	local noad='flags: qr rd ra( cd)?;'
	t "non-validating: $DANE_ZONE MX with RRSIG, no AD" "status: NOERROR.*$noad.*IN[[:space:]]+RRSIG[[:space:]]+MX " "${NV[@]}" "$DANE_ZONE" MX
	t "non-validating: $ZONE DNSKEY with RRSIG, no AD" "status: NOERROR.*$noad.*DNSKEY[[:space:]]+257 .*RRSIG[[:space:]]+DNSKEY " "${NV[@]}" "$ZONE" DNSKEY
	t "non-validating: $DANE_ZONE DS with RRSIG" "status: NOERROR.*$noad.*IN[[:space:]]+DS[[:space:]].*RRSIG[[:space:]]+DS " "${NV[@]}" "$DANE_ZONE" DS
	t "non-validating: $DANE_ZONE DNSKEY with RRSIG" "status: NOERROR.*$noad.*RRSIG[[:space:]]+DNSKEY " "${NV[@]}" "$DANE_ZONE" DNSKEY
	t "non-validating: NXDOMAIN in $DANE_ZONE with NSEC3 and RRSIG" "status: NXDOMAIN.*$noad.*NSEC3[[:space:]].*RRSIG[[:space:]]+NSEC3 " "${NV[@]}" "nx.$DANE_ZONE" A
	t "non-validating: NXDOMAIN in $ZONE with NSEC and RRSIG" "status: NXDOMAIN.*$noad.*IN[[:space:]]+NSEC[[:space:]].*RRSIG[[:space:]]+NSEC " "${NV[@]}" "nx.$ZONE" A
	t "non-validating: _25._tcp.${MXH_NAME[MX_DANE]} TLSA with RRSIG" "$noad.*TLSA[[:space:]]+3 1 1 .*RRSIG[[:space:]]+TLSA " "${NV[@]}" "_25._tcp.${MXH_NAME[MX_DANE]}" TLSA
	t "non-validating: $BOGUS MX passes with its damaged RRSIG (no SERVFAIL)" "status: NOERROR.*$noad.*RRSIG[[:space:]]+MX " "${NV[@]}" "$BOGUS" MX
	t "non-validating: $STS_ZONE has no signatures" "status: NOERROR.*$noad" "${NV[@]}" "${DOM_NAME[STS_ENFORCE_DOMAIN]}" MX
	a=$("${NV[@]}" "${DOM_NAME[STS_ENFORCE_DOMAIN]}" MX 2>&1) || true
	if grep -q RRSIG <<<"$a"; then ko "non-validating: no RRSIG in the unsigned $STS_ZONE" "$a"; else ok "non-validating: no RRSIG in the unsigned $STS_ZONE"; fi
	t "non-validating: outside $ZONE refused" 'status: REFUSED' "${NV[@]}" example.com A
}
