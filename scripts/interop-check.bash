# shellcheck shell=bash
# scripts/interop-check.bash: `scripts/interop check`, the lab seen through reference clients
# (swaks, gsasl, openssl, curl, dig). It is sourced by scripts/interop (run that, not this file);
# the checks of the MX part are mx_check in scripts/interop-mx.bash.

# ---------------------------------------------------------------------------------------------
# check: the lab, seen through reference clients (swaks, gsasl, openssl, curl, dig)

PASS=0 FAIL=0 CHECK_BG=''
ok() { PASS=$((PASS + 1)); printf 'PASS %s\n' "$1"; }
ko() { FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | tail -n 8 | sed 's/^/     | /'; }
# t NAME REGEX CMD...: passes if the command's combined output matches REGEX (an extended regex
# over the whole output: '.' also matches a newline). A check that takes 5 s or more says so.
t() {
	local n=$1 re=$2 out t0=${EPOCHREALTIME/[.,]/} took=""
	shift 2
	out=$(timeout -k 5 60 "$@" 2>&1 </dev/null) || true
	t0=$(((${EPOCHREALTIME/[.,]/} - t0) / 100000)) # tenths of a second
	[ "$t0" -lt 50 ] || took=" (took $((t0 / 10)).$((t0 % 10))s)"
	if grep -Ezq -- "$re" <<<"$out"; then ok "$n$took"; else ko "$n$took" "$out"; fi
}

# wait (up to 30 s) for a file in the Maildir that contains a fixed string; prints its path
maildir_find() {
	local i f
	for i in $(seq 1 300); do
		f=$(grep -rlF -- "$1" "$MAILDIR/new" 2>/dev/null | head -n 1) || true
		[ -n "$f" ] && { printf '%s\n' "$f"; return 0; }
		sleep 0.1
	done
	return 1
}

# the body of a delivered message (everything after the first empty line)
mail_body() { sed '1,/^$/d' "$1"; }

# mail_roundtrip NAME MESSAGE-ID FILE SWAKS-ARGS...: sends FILE (CRLF lines) with swaks, waits for it in
# the Maildir and compares the bodies (Postfix stores LF line ends). Sets LAST_DELIVERED.
LAST_DELIVERED=
mail_roundtrip() {
	local n=$1 mid=$2 file=$3 f
	shift 3
	LAST_DELIVERED=
	head -c -2 "$file" >"$file.send" # swaks itself ends DATA with CRLF . CRLF
	t "$n: accepted" ' 250 2\.0\.0 Ok: queued' "$@" --data "$file.send"
	if f=$(maildir_find "Message-ID: <$mid>"); then
		LAST_DELIVERED=$f
		if cmp -s <(mail_body "$f") <(sed '1,/^\r$/d' "$file" | tr -d '\r'); then
			ok "$n: body in the Maildir is what was sent"
		else
			ko "$n: body in the Maildir is what was sent" "$(diff <(sed '1,/^\r$/d' "$file" | tr -d '\r') <(mail_body "$f") | head -n 8)"
		fi
	else
		ko "$n: delivered to the Maildir" "$(tail -n 5 "$MAILLOG")"
	fi
}

cmd_check() {
	local d t0
	t0=$(now)
	d=$(lab_dir_arg check "${1:-}")
	set_layout "$d"
	# shellcheck disable=SC1091
	. "$d/env"
	[ -n "$(lab_pids)" ] || die "check: no lab is running in $d"
	local CA=$SMTPSECURE_LAB_CA_FILE H=$SMTPSECURE_LAB_MX_HOST W=$B/check id=$$.$RANDOM
	local SERVER_SPKI=$SMTPSECURE_LAB_SERVER_SPKI_SHA256 CA_SPKI=$SMTPSECURE_LAB_CA_SPKI_SHA256
	local UNUSED_SPKI=$SMTPSECURE_LAB_UNUSED_SPKI_SHA256
	rm -rf "$W"
	mkdir -p "$W"
	local S=(swaks --server 127.0.0.1 --helo client.test --from "$ALICE_USER" --tls-verify --tls-ca-path "$CA" --tls-sni "$H" --timeout 30)
	local R="elsewhere.example"
	local DIG=(dig +dnssec +time=2 +tries=1 @"$UB_ADDR" -p "$UB_PORT")
	# dane NAME REGEX HOST PORT [IP]: s_client to IP (default 127.0.0.1) with the TLSA records (hex
	# joined) that Unbound returns, by SMTP's rules (RFC 7672: no name checks under DANE-EE)
	dane() {
		local n=$1 re=$2 h=$3 p=$4 ip=${5:-127.0.0.1} rr a=()
		while read -r rr; do
			[ -n "$rr" ] && a+=(-dane_tlsa_rrdata "$rr")
		done < <("${DIG[@]}" +short "_$p._tcp.$h" TLSA | awk '$1 ~ /^[0-9]+$/ { d = ""; for (i = 4; i <= NF; i++) d = d $i; print $1, $2, $3, d }')
		if [ ${#a[@]} = 0 ]; then ko "$n" "no TLSA records for _$p._tcp.$h"; return; fi
		t "$n" "$re" openssl s_client -starttls smtp -connect "$ip:$p" -CAfile "$CA" -dane_tlsa_domain "$h" "${a[@]}" -dane_ee_no_namechecks -verify_return_error -brief
	}

	# The MX part's checks run at the same time as these, in a subshell; their output and counts
	# are added at the end.
	local mxpid
	(
		PASS=0 FAIL=0
		mx_check
		echo "mx-check: $PASS $FAIL"
	) >"$W/mx-check.out" 2>&1 &
	mxpid=$! CHECK_BG=$!

	# --- Postfix with Dovecot SASL
	local ehlo
	ehlo=$("${S[@]}" -p "$PORT_STARTTLS" --tls --quit-after HELO 2>&1 </dev/null) || true
	local kw
	for kw in PIPELINING SIZE 8BITMIME SMTPUTF8 DSN ENHANCEDSTATUSCODES CHUNKING 'AUTH PLAIN LOGIN'; do
		if grep -Eq -- "<~  250[- ]$kw( |\$)" <<<"$ehlo"; then ok "EHLO after STARTTLS ($PORT_STARTTLS) offers $kw"; else ko "EHLO after STARTTLS ($PORT_STARTTLS) offers $kw" "$ehlo"; fi
	done
	t "STARTTLS ($PORT_STARTTLS): certificate verified, mail for $ZONE accepted without AUTH" ' 250 2\.0\.0 Ok: queued' \
		"${S[@]}" -p "$PORT_STARTTLS" --tls --to "rcpt@$ZONE"
	t "implicit TLS ($PORT_IMPLICIT): accepted" ' 250 2\.0\.0 Ok: queued' "${S[@]}" -p "$PORT_IMPLICIT" --tlsc --to "rcpt@$ZONE"
	if [ "$IPV6" = 1 ]; then
		t "IPv6 [::1]:$PORT_STARTTLS STARTTLS: accepted" ' 250 2\.0\.0 Ok: queued' "${S[@]}" --server ::1 -p "$PORT_STARTTLS" --tls --to "rcpt@$ZONE"
		t "IPv6 [::1]:$PORT_IMPLICIT implicit TLS: accepted" ' 250 2\.0\.0 Ok: queued' "${S[@]}" --server ::1 -p "$PORT_IMPLICIT" --tlsc --to "rcpt@$ZONE"
	fi
	t "relay to another domain without AUTH: denied" '554 5\.7\.1' "${S[@]}" -p "$PORT_STARTTLS" --tls --to "x@$R"
	t "AUTH not offered before STARTTLS ($PORT_STARTTLS)" 'not advertise|not supported' \
		"${S[@]}" -p "$PORT_STARTTLS" --to "x@$R" -a PLAIN -au "$ALICE_USER" -ap "$ALICE_PASS"
	t "Dovecot AUTH PLAIN, ASCII password ($PORT_STARTTLS): relay allowed" ' 250 2\.0\.0 Ok: queued' \
		"${S[@]}" -p "$PORT_STARTTLS" --tls --to "x@$R" -a PLAIN -au "$ALICE_USER" -ap "$ALICE_PASS"
	t "Dovecot AUTH LOGIN, UTF-8 password ($PORT_IMPLICIT)" ' 250 2\.0\.0 Ok: queued' \
		"${S[@]}" -p "$PORT_IMPLICIT" --tlsc --to "x@$R" -a LOGIN -au "$BOB_USER" -ap "$BOB_PASS"
	t "Dovecot AUTH PLAIN, UTF-8 password ($PORT_STARTTLS)" ' 250 2\.0\.0 Ok: queued' \
		"${S[@]}" -p "$PORT_STARTTLS" --tls --to "x@$R" -a PLAIN -au "$BOB_USER" -ap "$BOB_PASS"
	t "Dovecot wrong password: 535 5.7.8" '535 5\.7\.8' \
		"${S[@]}" -p "$PORT_STARTTLS" --tls --to "x@$R" -a PLAIN -au "$ALICE_USER" -ap wrong
	t "several recipients in one transaction" ' 250 2\.0\.0 Ok: queued' \
		"${S[@]}" -p "$PORT_STARTTLS" --tls --to "a@$ZONE,b@$ZONE,c@$H_TA"

	# --- Cyrus sasldb
	local cy
	cy=$("${S[@]}" -p "$PORT_CYRUS" --tls --quit-after HELO 2>&1 </dev/null) || true
	if grep -Eq -- "<~  250[- ]AUTH .*CRAM-MD5" <<<"$cy" && grep -Eq -- "<~  250[- ]AUTH .*SCRAM-SHA-256" <<<"$cy"; then
		ok "Cyrus ($PORT_CYRUS) offers $(grep -Eo -- '250[- ]AUTH .*' <<<"$cy" | head -n 1 | cut -c5- | tr -d '\r')"
	else
		ko "Cyrus ($PORT_CYRUS) offers CRAM-MD5 and SCRAM-SHA-256" "$cy"
	fi
	t "Cyrus AUTH PLAIN" ' 250 2\.0\.0 Ok: queued' "${S[@]}" -p "$PORT_CYRUS" --tls --to "x@$R" -a PLAIN -au "$ALICE_USER" -ap "$ALICE_PASS"
	t "Cyrus AUTH LOGIN, UTF-8 password" ' 250 2\.0\.0 Ok: queued' "${S[@]}" -p "$PORT_CYRUS" --tls --to "x@$R" -a LOGIN -au "$BOB_USER" -ap "$BOB_PASS"
	t "Cyrus AUTH CRAM-MD5 (swaks)" ' 250 2\.0\.0 Ok: queued' "${S[@]}" -p "$PORT_CYRUS" --tls --to "x@$R" -a CRAM-MD5 -au "$ALICE_USER" -ap "$ALICE_PASS"
	t "Cyrus wrong password: 535 5.7.8" '535 5\.7\.8' "${S[@]}" -p "$PORT_CYRUS" --tls --to "x@$R" -a PLAIN -au "$ALICE_USER" -ap wrong
	local G=(gsasl --smtp --connect "127.0.0.1:$PORT_CYRUS" --starttls --x509-ca-file "$CA" --hostname "$H" --no-cb)
	t "Cyrus AUTH SCRAM-SHA-256 (gsasl)" '235 2\.7\.0' "${G[@]}" -m SCRAM-SHA-256 -a "$ALICE_USER" -p "$ALICE_PASS" -z ''
	t "Cyrus AUTH SCRAM-SHA-256, UTF-8 password (gsasl)" '235 2\.7\.0' "${G[@]}" -m SCRAM-SHA-256 -a "$BOB_USER" -p "$BOB_PASS" -z ''
	t "Cyrus AUTH SCRAM-SHA-1 (gsasl)" '235 2\.7\.0' "${G[@]}" -m SCRAM-SHA-1 -a "$ALICE_USER" -p "$ALICE_PASS" -z ''
	t "Cyrus AUTH SCRAM-SHA-256 wrong password (gsasl): 535" '535 5\.7\.8' "${G[@]}" -m SCRAM-SHA-256 -a "$ALICE_USER" -p wrong -z ''
	t "Cyrus AUTH CRAM-MD5 (gsasl)" '235 2\.7\.0' "${G[@]}" -m CRAM-MD5 -a "$ALICE_USER" -p "$ALICE_PASS" -z ''

	# --- the downgrade listeners
	local pre
	pre=$(wc -l <"$MAILLOG" 2>/dev/null || echo 0)
	t "no STARTTLS offered ($PORT_NOTLS)" 'STARTTLS not advertised|TLS not available|not advertis' "${S[@]}" -p "$PORT_NOTLS" --tls --to "rcpt@$ZONE"
	local i line=""
	for i in $(seq 1 150); do
		line=$(tail -n +"$((pre + 1))" "$MAILLOG" | grep -E "postfix/notls/smtpd\[[0-9]+\]: disconnect from" | tail -n 1) || true
		[ -n "$line" ] && break
		sleep 0.1
	done
	if [ -n "$line" ] && ! grep -q ' mail=' <<<"$line"; then ok "maillog: no MAIL command on $PORT_NOTLS (${line##*: })"; else ko "maillog: no MAIL command on $PORT_NOTLS" "$line"; fi
	t "wrong-name certificate ($PORT_WRONGNAME): host name check fails (openssl)" 'Verify return code: 62|[Hh]ostname mismatch' \
		openssl s_client -starttls smtp -connect "127.0.0.1:$PORT_WRONGNAME" -CAfile "$CA" -verify_hostname "$H" -verify_return_error -brief
	t "wrong-name certificate ($PORT_WRONGNAME) is still a valid chain for $H_WRONG" 'Verification: OK' \
		openssl s_client -starttls smtp -connect "127.0.0.1:$PORT_WRONGNAME" -CAfile "$CA" -verify_hostname "$H_WRONG" -verify_return_error -brief
	t "STARTTLS ($PORT_STARTTLS): chain and host name $H verify (openssl)" 'Verification: OK' \
		openssl s_client -starttls smtp -connect "127.0.0.1:$PORT_STARTTLS" -CAfile "$CA" -verify_hostname "$H" -verify_return_error -brief
	t "implicit TLS ($PORT_IMPLICIT): chain and host name $H verify (openssl)" 'Verification: OK' \
		openssl s_client -connect "127.0.0.1:$PORT_IMPLICIT" -CAfile "$CA" -verify_hostname "$H" -verify_return_error -brief

	# --- message content through the Maildir
	local f
	{
		printf 'From: <%s>\r\nTo: <rcpt@%s>\r\nSubject: lone dots %s\r\nMessage-ID: <dots.%s@client.test>\r\n\r\n' "$ALICE_USER" "$ZONE" "$id" "$id"
		printf '.\r\n..\r\n. \r\n.x\r\nline\r\n.\r\n\r\n.\r\nGr\303\274\303\237e \342\230\203\r\nend\r\n'
	} >"$W/dots.eml"
	mail_roundtrip "lone dots and 8-bit text" "dots.$id@client.test" "$W/dots.eml" "${S[@]}" -p "$PORT_STARTTLS" --tls --to "rcpt@$ZONE"
	f=$LAST_DELIVERED
	# Postfix prepends Return-Path, X-Original-To, Delivered-To and one (folded) Received field
	if [ -n "$f" ] && [ "$(sed -n '/^[^[:space:]]/s/:.*//p' "$f" | head -n 5 | tr '\n' ' ')" = "Return-Path X-Original-To Delivered-To Received From " ]; then
		ok "Maildir file = Return-Path, X-Original-To, Delivered-To, Received + the message as sent"
	else
		ko "Maildir file = Return-Path, X-Original-To, Delivered-To, Received + the message as sent" "$(head -n 8 "${f:-/dev/null}")"
	fi
	# 10 MiB of body (10485760 bytes of base64 in 76-character lines)
	{
		printf 'From: <%s>\r\nTo: <rcpt@%s>\r\nSubject: big %s\r\nMessage-ID: <big.%s@client.test>\r\n\r\n' "$ALICE_USER" "$ZONE" "$id" "$id"
		head -c 7864320 /dev/zero | base64 -w 76 | sed 's/$/\r/'
	} >"$W/big.eml"
	mail_roundtrip "10 MiB message" "big.$id@client.test" "$W/big.eml" "${S[@]}" -p "$PORT_IMPLICIT" --tlsc --to "rcpt@$ZONE" --suppress-data
	rm -f "$W"/big.eml*

	# --- DNS through Unbound (validating) and NSD (authoritative)
	t "secure: $ZONE MX has AD" 'status: NOERROR.*flags:[^;]* ad;' "${DIG[@]}" "$ZONE" MX
	t "secure: $ZONE MX -> $H_EE" "MX[[:space:]]+10 $H_EE\." "${DIG[@]}" "$ZONE" MX
	t "secure: $H_EE A has AD" 'status: NOERROR.*flags:[^;]* ad;' "${DIG[@]}" "$H_EE" A
	t "secure: NXDOMAIN with AD (nx.$ZONE)" 'status: NXDOMAIN.*flags:[^;]* ad;' "${DIG[@]}" "nx.$ZONE" A
	t "secure: no TLSA for $H_NOTLSA (NXDOMAIN with AD)" 'status: NXDOMAIN.*flags:[^;]* ad;' "${DIG[@]}" "_$PORT_STARTTLS._tcp.$H_NOTLSA" TLSA
	t "secure: NODATA with AD ($H_EE TXT)" 'status: NOERROR.*flags:[^;]* ad;.*ANSWER: 0,' "${DIG[@]}" "$H_EE" TXT
	t "secure: null MX ($H_NULLMX)" 'MX[[:space:]]+0 \.' "${DIG[@]}" "$H_NULLMX" MX
	t "secure: $H_CNAME CNAME chain to $H_EE" "CNAME[[:space:]]+$H_EE\." "${DIG[@]}" "$H_CNAME" A
	t "secure: _mta-sts.$ZONE TXT" 'v=STSv1' "${DIG[@]}" "_mta-sts.$ZONE" TXT
	t "secure: _smtp._tls.$ZONE TXT" 'v=TLSRPTv1' "${DIG[@]}" "_smtp._tls.$ZONE" TXT
	local host want got
	for host in "$H_EE 3 1 1 $SERVER_SPKI" "$H_TA 2 1 1 $CA_SPKI" "$H_EE_BAD 3 1 1 $UNUSED_SPKI" "$H_TA_BAD 2 1 1 $UNUSED_SPKI" "$H_CNAME_OWN 3 1 1 $SERVER_SPKI"; do
		want=${host#* }
		host=${host%% *}
		got=$("${DIG[@]}" +short "_$PORT_STARTTLS._tcp.$host" TLSA 2>&1 | tr -d ' ' | tr 'A-F' 'a-f') || true
		if grep -qx -- "$(tr -d ' ' <<<"$want")" <<<"$got"; then ok "secure: _$PORT_STARTTLS._tcp.$host TLSA $(cut -c1-5 <<<"$want") ..."; else ko "_$PORT_STARTTLS._tcp.$host TLSA $want" "$got"; fi
	done
	t "bogus: $BOGUS MX is SERVFAIL with EDE 6 (DNSSEC Bogus)" 'status: SERVFAIL.*EDE: 6' "${DIG[@]}" "$BOGUS" MX
	t "bogus: mx.$BOGUS A is SERVFAIL with EDE 6" 'status: SERVFAIL.*EDE: 6' "${DIG[@]}" "mx.$BOGUS" A
	t "bogus: +cd shows the records (not 'no records')" "MX[[:space:]]+10 mx\.$BOGUS\." "${DIG[@]}" +cd "$BOGUS" MX
	t "insecure: $INSECURE MX is NOERROR" "status: NOERROR.*MX[[:space:]]+10 mx\.$INSECURE\." "${DIG[@]}" "$INSECURE" MX
	t "insecure: ... without AD" 'status: NOERROR.*flags: qr rd ra;' "${DIG[@]}" "$INSECURE" MX
	t "insecure: TLSA of mx.$INSECURE answered without AD" 'status: NOERROR.*flags: qr rd ra;.*IN[[:space:]]+TLSA[[:space:]]+3 1 1' "${DIG[@]}" "_$PORT_STARTTLS._tcp.mx.$INSECURE" TLSA
	t "outside $ZONE: refused at once" 'status: REFUSED' "${DIG[@]}" example.com A
	t "NSD (authoritative) answers without AD" 'status: NOERROR.*flags: qr aa;' dig +dnssec +norec +time=2 +tries=1 @"$NSD_ADDR" -p "$NSD_PORT" "$ZONE" MX

	# --- DANE with OpenSSL's own implementation, records as Unbound returns them
	local nomatch='num=65:no matching DANE TLSA records'
	dane "DANE-EE (openssl): $H_EE:$PORT_STARTTLS verifies" 'Verification: OK.*DANE TLSA 3 1 1 [^\n]* matched EE certificate' "$H_EE" "$PORT_STARTTLS"
	dane "DANE-EE (openssl): $H_EE:$PORT_CYRUS verifies" 'Verification: OK.*DANE TLSA 3 1 1 [^\n]* matched EE certificate' "$H_EE" "$PORT_CYRUS"
	dane "DANE-TA (openssl): $H_TA:$PORT_STARTTLS verifies" 'Verification: OK.*Verified peername: dane-ta.*DANE TLSA 2 [01] 1 [^\n]* matched TA certificate' "$H_TA" "$PORT_STARTTLS"
	dane "DANE-EE via CNAME, TLSA at the alias (openssl): $H_CNAME_OWN:$PORT_STARTTLS verifies" 'Verification: OK.*matched EE certificate' "$H_CNAME_OWN" "$PORT_STARTTLS"
	dane "DANE-EE mismatch (openssl): $H_EE_BAD:$PORT_STARTTLS fails" "$nomatch" "$H_EE_BAD" "$PORT_STARTTLS"
	dane "DANE-TA mismatch (openssl): $H_TA_BAD:$PORT_STARTTLS fails" "$nomatch" "$H_TA_BAD" "$PORT_STARTTLS"
	dane "DANE-EE on the wrong-name listener (openssl): $H_EE:$PORT_WRONGNAME fails" "$nomatch" "$H_EE" "$PORT_WRONGNAME"

	# --- the MX hosts, the MTA-STS policy hosts and the non-validating resolver (started above)
	local mxp mxf
	wait "$mxpid" || true
	grep -v '^mx-check: ' "$W/mx-check.out" || true
	CHECK_BG=
	read -r _ mxp mxf < <(grep '^mx-check: ' "$W/mx-check.out") || { mxp=0 mxf=0; ko "MX checks: did not finish"; }
	PASS=$((PASS + mxp)) FAIL=$((FAIL + mxf))

	rm -rf "$W"
	say "check: took $(since "$t0"); the Maildir holds $(find "$MAILDIR/new" -type f | wc -l) messages"
	echo "check: $PASS passed, $FAIL failed"
	[ "$FAIL" = 0 ]
}
