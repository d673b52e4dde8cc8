# Copyright (C) ngx_ai_gateway contributors

package Test::Nginx::Socket;

# Minimal, self-contained re-implementation of openresty/test-nginx's
# Test::Nginx::Socket (not packaged by Debian).  It runs test files written in
# the Test::Nginx::Socket data format (parsed by Test::Base, exactly like
# upstream), so the same t/*.t files also run under the real Test::Nginx.
# Assertion names and counts follow upstream, so `plan tests => ...`
# formulas written for upstream stay valid.
#
# Supported sections: config http_config main_config post_main_config
#   server_name log_level user_files init request (string, eval'd string or
#   array of requests) raw_request (string or array of packets)
#   raw_request_middle_delay more_headers (string or array) pipelined_requests
#   error_code error_code_like response_headers response_headers_like
#   raw_response_headers_like raw_response_headers_unlike response_body
#   response_body_like response_body_unlike response_body_filters
#   response_body_eval request_eval (deprecated upstream forms) error_log
#   no_error_log grep_error_log grep_error_log_out access_log no_access_log
#   shutdown_error_log no_shutdown_error_log timeout abort wait shutdown
#   ignore_response http09 must_die tcp_listen tcp_reply tcp_reply_delay
#   tcp_query tcp_query_len tcp_query_auto_timeout tcp_no_close tcp_shutdown
#   tcp_shutdown_delay skip_nginx skip_eval ONLY SKIP LAST (Test::Base);
#   ignored: curl no_check_leak stap* suppress_stderr.
# See Test::Nginx::Util for the environment variables.

use Test::Base -base;

use Digest::MD5 ();
use Digest::SHA ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(min);
use POSIX ();
use Text::Diff ();
use Time::HiRes qw(sleep time);

use Test::Nginx::Util;

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test repeat_each config_preamble
    worker_connections master_process_enabled no_long_string workers
    master_on master_off log_level no_shuffle no_root_location use_hup
    server_name server_addr server_root html_dir server_port
    server_port_for_client timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler
    add_cleanup_handler add_response_body_check
    $ServerPort $ServerPortForClient $ServRoot $ServerRoot $NginxVersion
    $NginxBinary
);

# Test::Base evaluates "--- xxx eval" sections in package Test::Base::Filter;
# make the usual Test::More functions callable from there too.
for my $f (qw(ok is isnt like unlike is_deeply cmp_ok pass fail diag note)) {
    no strict 'refs';
    *{"Test::Base::Filter::$f"} = \&{"Test::More::$f"}
        unless defined &{"Test::Base::Filter::$f"};
}

our @ResponseBodyChecks;
our $RawResponse;       # raw bytes of the last response received

# Hard cap for one block (all repeats), seconds.
our $BlockTimeout = ($ENV{TEST_NGINX_BLOCK_TIMEOUT} || 60)
                    * $Test::Nginx::Util::SlowFactor;

sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

#------------------------------------------------------------------------------
# Driver
#------------------------------------------------------------------------------

sub run_tests () {
    plan('no_plan') unless Test::More->builder->has_plan;
    init_runner();

    for my $block (Test::Base::blocks()) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value("name", $0 . " " . $block->name);
        run_test($block);
        $_->($block) for @TestCleanupHandlers;
    }

    cleanup(1);
}

# Run one block with a hard time cap; never lets an exception or a hang
# escape (the block is failed instead).
sub run_test ($) {
    my $block = shift;
    my $name = $block->name;
    my $ok = eval {
        local $SIG{ALRM} = sub { die "TEST_NGINX_BLOCK_TIMEOUT\n" };
        alarm $BlockTimeout;
        run_block($block);
        alarm 0;
        1;
    };
    alarm 0;
    return if $ok;
    my $err = $@;
    if ($err eq "TEST_NGINX_BLOCK_TIMEOUT\n") {
        fail("$name - block did not finish within ${BlockTimeout}s "
             . "(aborted)");
    } else {
        fail("$name - died: $err");
    }
    stop_tcp_server();
    stop_nginx();
}

sub check_skip ($) {
    my $block = shift;
    my $name = $block->name;
    if (defined(my $spec = $block->skip_eval)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- skip_eval spec: $spec");
        my ($n, $code) = ($1, $2);
        my $skip = eval $code;
        bail_out("$name - skip_eval - failed to eval \"$code\": $@") if $@;
        return ($n, "skip_eval") if $skip;
    }
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                  (?:\s*:\s*(.*))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        my ($n, $op, $reason) = ($1, $2, $6);
        my $ver = get_canon_version($3, $4, $5);
        $reason ||= "nginx version $op $3.$4.$5";
        my $skip = !defined $NginxVersion ? $op =~ /^</
                 : eval "$NginxVersion $op $ver";
        return ($n, $reason) if $skip;
    }
    return;
}

sub run_block ($) {
    my $block = shift;
    my $name = $block->name;

    local $Test::Nginx::Util::RandPorts = {};

    if (my ($n, $reason) = check_skip($block)) {
        for (1 .. $RepeatEach) {
            SKIP: { skip("$name - $reason", $n) }
        }
        return;
    }

    stop_tcp_server();
    stop_nginx();           # normally already stopped at the previous block
    if (port_in_use_by_others()) {
        bail_out("$name - port $ServerPort is in use by another process; "
                 . "set TEST_NGINX_SERVER_PORT");
    }

    setup_server_root();
    write_user_files($block);
    write_config_file($block);

    if (defined $block->must_die) {
        run_must_die($block);
        return;
    }

    my $pid = start_nginx(valgrind => $UseValgrind);
    warn "$name\n" if $UseValgrind;
    my ($ready, $status) = wait_nginx_ready($pid);
    if (!$ready) {
        my $why = defined $status ? "exited with status " . ($status >> 8)
                . ($status & 127 ? " (signal " . ($status & 127) . ")" : '')
                : "did not listen on port $ServerPort in time";
        fail("$name - failed to start nginx: $why");
        diag(startup_diagnostics());
        stop_nginx();
        return;
    }

    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    reset_error_log_pos();
    for my $i (0 .. $RepeatEach - 1) {
        write_user_files($block) if $i > 0;

        my ($tcp_sock, $query_file);
        if (defined(my $target = $block->tcp_listen)) {
            $target = expand_env_in_text($target, $name);
            $target =~ s/^\s+|\s+$//g;
            if (defined $block->tcp_query || defined $block->tcp_query_len) {
                $query_file = "$Test::Nginx::Util::LogDir/tcp_query.$i";
                unlink $query_file;
            }
            $tcp_sock = start_tcp_server($block, $target, $query_file);
        }

        run_test_helper($block, $i);

        if ($tcp_sock) {
            run_tcp_server_tests($block, $query_file);
            stop_tcp_server();
        }
    }

    finish_block($block);
}

# Something else than our (stopped) nginx listening on the server port?
sub port_in_use_by_others () {
    for (1 .. 100) {
        return 0 unless Test::Nginx::Util::port_listening($ServerPort);
        sleep 0.02;
    }
    return 1;
}

sub startup_diagnostics () {
    my $out = '';
    for my $f ($Test::Nginx::Util::StderrFile, $ErrLogFile) {
        my $lines = read_file_lines($f);
        next unless @$lines;
        my @tail = @$lines > 20 ? @$lines[-20 .. -1] : @$lines;
        $out .= "--- $f (tail):\n" . join '', @tail;
    }
    return $out || "no output from nginx";
}

# Stop nginx after the block; report crashes, shutdown log patterns and
# valgrind findings.
sub finish_block ($) {
    my $block = shift;
    my $name = $block->name;

    if ($NoClean) {
        # leave nginx running for inspection (stopped at the next block)
        check_shutdown_error_log($block, "TEST_NGINX_NO_CLEAN");
        return;
    }

    my $res = stop_nginx() || {};
    my $st = $res->{status};
    if (defined $st && ($st & 127) && ($st & 127) != POSIX::SIGQUIT()
        && ($st & 127) != POSIX::SIGKILL())
    {
        fail("$name - nginx crashed (signal " . ($st & 127)
             . ($st & 128 ? ", core dumped" : '') . ")");
        diag(startup_diagnostics());
    } elsif ($res->{early}) {
        diag("$name - WARNING: nginx exited prematurely (status "
             . (($st // 0) >> 8) . ")");
    }

    check_shutdown_error_log($block, 0);

    if ($UseValgrind) {
        for my $report (valgrind_reports()) {
            fail("$name - valgrind reported errors");
            diag($report);
        }
    }
}

sub run_must_die ($) {
    my $block = shift;
    my $name = $block->name;
    my $must_die = $block->must_die;
    $must_die =~ s/^\s+|\s+$//g if defined $must_die;

    for my $i (0 .. $RepeatEach - 1) {
        # fresh logs for every attempt
        unlink $ErrLogFile, $Test::Nginx::Util::StderrFile;
        reset_error_log_pos();
        my $pid = start_nginx(valgrind => 0);   # like upstream: no valgrind
        my $status = wait_nginx_exit($pid, 5 * $Test::Nginx::Util::SlowFactor,
                                     0.3);
        my $stderr = read_file_lines($Test::Nginx::Util::StderrFile);

        if (!defined $status) {
            is(0, $must_die =~ /^\d+$/ ? $must_die : 1,
               $must_die =~ /^\d+$/
               ? "$name - die with the expected exit code"
               : "$name - die as expected");
            warn "WARNING: $name - nginx must die but it does not; "
                 . "killing it (req $i)\n";
            stop_nginx();
        } elsif (grep { /^exec .* failed/ } @$stderr) {
            fail("$name - failed to execute the nginx command line");
        } elsif ($status & 127) {
            fail("$name - nginx crashed (signal " . ($status & 127) . ")");
        } elsif ($must_die =~ /^\d+$/) {
            is($must_die, $status >> 8,
               "$name - die with the expected exit code");
        } else {
            isnt($status, 0, "$name - die as expected");
        }

        # early startup messages go to error.log (nginx -e); fall back to
        # the captured stderr if error.log has none.
        my $lines = error_log_data();
        $lines = $stderr unless grep { /\[(?:emerg|alert|crit)\]/ } @$lines;
        check_error_log($block, undef, $i, 0, $lines);
    }
}

#------------------------------------------------------------------------------
# Building requests
#------------------------------------------------------------------------------

sub parse_more_headers ($) {
    my ($in) = @_;
    my $is_chunked;
    my $out = '';
    for my $header (split /\n+/, $in // '') {
        next if $header =~ /^\s*\#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        next unless defined $key && length $key;
        $val //= '';
        $val =~ s/\r$//;
        $is_chunked = 1
            if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# "METHOD [URI [HTTP/x.y]]\nbody" => raw HTTP request (upstream semantics:
# Host/Connection added unless given, Content-Length computed for a
# non-empty body after trimming surrounding whitespace).
sub build_request ($$$$) {
    my ($name, $more_headers, $conn_type, $request) = @_;
    my ($hdr, $is_chunked) = parse_more_headers($more_headers);

    my ($first, $content) = split /\n/, $request, 2;
    $content //= '';
    if (!defined $first
        || $first !~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/)
    {
        bail_out("$name - Request line is not valid. Should be "
                 . "'meth [url [version]]' but got \""
                 . ($first // '') . "\".");
    }
    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $hdr !~ /(?:^|\n)Content-Length:/i)
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }

    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $hdr !~ /(?:^|\n)Host:/i;
    $headers .= "Connection: $conn_type\r\n"
        if $hdr !~ /(?:^|\n)Connection/i;
    $headers .= "$hdr$len_header\r\n";

    return "$meth $url $ver\r\n$headers$content";
}

sub more_headers_for ($$) {
    my ($block, $i) = @_;
    my $mh = $block->more_headers // '';
    if (ref $mh eq 'ARRAY') {
        $mh = $mh->[$i];
        bail_out($block->name . " - --- more_headers lacks data for the "
                 . "${i}th request") unless defined $mh;
    }
    return expand_env_in_text($mh, $block->name);
}

# Returns an array ref of requests; each request is an array ref of packets
# ({ value => bytes, delay_before => secs }) sent over one connection.
sub get_req_from_block ($) {
    my ($block) = @_;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        $raw = expand_env_in_text($raw, $name);
        push @reqs, ref $raw eq 'ARRAY'
                    ? [ map { ref $_ ? $_ : { value => $_ } } @$raw ]
                    : [ { value => $raw } ];
        return \@reqs;
    }

    if (my $pipelined = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $pipelined eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$pipelined) {
            my $r = expand_env_in_text($pipelined->[$i], $name);
            $all .= build_request($name, more_headers_for($block, $i),
                                  $i == $#$pipelined ? 'close' : 'keep-alive',
                                  $r);
        }
        return [ [ { value => $all } ] ];
    }

    my $request = $block->request;
    if (defined $block->request_eval) {
        $request = eval $block->request_eval;
        warn $@ if $@;
    }
    bail_out("$name - no --- request section") unless defined $request;

    my @list = ref $request eq 'ARRAY' ? @$request : ($request);
    bail_out("$name - invalid --- request: MUST be a string or an array")
        if ref $request && ref $request ne 'ARRAY';

    for my $i (0 .. $#list) {
        my $one = $list[$i];
        # an array of packets: joined (packet boundaries are not kept)
        $one = join '', map { ref $_ ? $_->{value} : $_ } @$one
            if ref $one eq 'ARRAY';
        $one = expand_env_in_text($one, $name);
        1 while $one =~ s/^\s*\#[^\n]+\s+|^\s+//gs;   # leading comments
        push @reqs, [ { value => build_request($name,
                                               more_headers_for($block, $i),
                                               'close', $one) } ];
    }
    return \@reqs;
}

#------------------------------------------------------------------------------
# HTTP client
#------------------------------------------------------------------------------

sub connect_to_server ($$) {
    my ($name, $timeout) = @_;
    my $sock;
    for my $try (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                      PeerPort => $ServerPortForClient,
                                      Proto => 'tcp', Timeout => $timeout);
        return $sock if $sock;
        last if $try >= 50;
        sleep 0.02;
    }
    return undef;
}

# Send one request (array of packets) and read the response until the
# server closes the connection or nothing happens for $timeout seconds.
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;
    local $SIG{PIPE} = 'IGNORE';

    my $head_req = (join '', map { $_->{value} } @$packets) =~ /^\s*HEAD\s+/
                   ? 1 : 0;

    my $sock = connect_to_server($name, $timeout);
    if (!$sock) {
        fail("$name - Can't connect to $ServerAddr:$ServerPortForClient: "
             . "$! (aborted)\n");
        return ('', $head_req);
    }
    $sock->blocking(0);

    my @queue = @$packets;
    my $wbuf = (shift @queue)->{value};
    my $woff = 0;
    my $writing = 1;
    my $resp = '';
    my $sel = IO::Select->new($sock);

    # $timeout is an inactivity timeout (like upstream's select() timeout)
    my $deadline = time + $timeout;
    while (1) {
        my $wait = $deadline - time;
        $wait = 0 if $wait < 0;
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef,
                                         undef, $wait);
        if (!$r && !$w) {
            next if time < $deadline - 0.001;    # EINTR
            if (!defined $block->abort) {
                fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }
        $deadline = time + $timeout;

        if ($w && @$w) {
            while ($writing) {
                if ($woff >= length $wbuf) {
                    my $next = shift @queue;
                    if (!$next) {
                        $writing = 0;
                        if (defined(my $how = $block->shutdown)) {
                            $how = 1 if $how !~ /\S/;
                            shutdown($sock, $how);
                        }
                        last;
                    }
                    my $delay = $next->{delay_before} // $middle_delay;
                    sleep parse_time($delay) if $delay;
                    ($wbuf, $woff) = ($next->{value}, 0);
                    next;
                }
                my $n = syswrite($sock, $wbuf, length($wbuf) - $woff, $woff);
                if (!defined $n) {
                    last if $! == EAGAIN || $! == EWOULDBLOCK;
                    warn "WARNING: $name - write failed: $!\n";
                    $writing = 0;
                    last;
                }
                $woff += $n;
            }
        }

        if ($r && @$r) {
            my $n = sysread($sock, my $buf, 65536);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!\n"
                    unless length $resp;
                last;
            }
            last if $n == 0;    # closed by the server
            $resp .= $buf;
        }
    }
    close $sock;
    return ($resp, $head_req);
}

# Parse a raw response: returns (HTTP::Response, raw header text, bytes left
# over after this response (pipelining)).  Chunked bodies are decoded.
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = '';
    $raw_headers = $1 if $raw =~ /(.*?\r\n)\r\n/s;

    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        undef $code;
        $res->code(undef);
    }

    my $body = $res->content // '';
    my $left;

    if ($head_req || ($code && ($code == 304 || $code == 204
                                || $code =~ /^1/)))
    {
        $left = $body if length $body;
        $res->content('');
        return ($res, $raw_headers, $left);
    }

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $enc && $enc =~ /\bchunked\b/i) {
        my ($decoded, $rest, $err) = decode_chunked($body);
        if ($err) {
            fail("$name - $err");
        }
        $res->content($decoded);
        $left = $rest;
    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($body) . "\n";
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }
    return ($res, $raw_headers, $left);
}

# Returns (decoded body, bytes after the last chunk, error message).
sub decode_chunked ($) {
    my ($raw) = @_;
    my $decoded = '';
    pos($raw) = 0;
    while (1) {
        if ($raw =~ /\G[ \t]*([0-9A-Fa-f]+)[^\r\n]*\r\n/gc) {
            my $size = hex $1;
            if ($size == 0) {
                1 while $raw =~ /\G[^\r\n]+\r\n/gc;    # trailers
                if ($raw =~ /\G\r\n/gc) {
                    my $rest = substr $raw, pos($raw);
                    return ($decoded, length $rest ? $rest : undef);
                }
                return ($decoded, undef, "invalid chunked data received "
                        . "(expected CRLF after the last chunk).");
            }
            my $start = pos($raw);
            if (length($raw) - $start < $size) {
                return ($decoded . substr($raw, $start), undef,
                        "invalid chunked data received (not enough octets "
                        . "for the data section)");
            }
            $decoded .= substr $raw, $start, $size;
            pos($raw) = $start + $size;
            $raw =~ /\G\r\n/gc
                or return ($decoded, undef, "invalid chunked data received "
                           . "(expected CRLF).");
        } elsif ($raw =~ /\G(.+)/gcs) {
            return ($decoded, undef, "invalid chunked body received: $1");
        } else {
            return ($decoded, undef, "no last chunk found - $raw");
        }
    }
}

#------------------------------------------------------------------------------
# Running the requests of one block (one repetition) and checking them
#------------------------------------------------------------------------------

sub run_test_helper ($$) {
    my ($block, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout) // timeout();
    $timeout *= $Test::Nginx::Util::SlowFactor unless defined $block->abort;

    my ($n, $need_array);
    if ($block->pipelined_requests) {
        $n = @{ $block->pipelined_requests };
        $need_array = 1;
    } else {
        $need_array = @$reqs > 1;
    }

    my $res;
    my $req_idx = 0;
    for my $one_req (@$reqs) {
        my ($raw, $head_req) = send_request($one_req,
                                            $block->raw_request_middle_delay,
                                            $timeout, $block);
        $raw //= '';
        $RawResponse = $raw;

        while (1) {     # once per response (several when pipelining)
            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = HTTP::Response->new(200, "OK", [], $raw);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) =
                        parse_response($name, $raw, $head_req);
                }
            }

            if (!$n) {
                if (defined $left && length $left) {
                    (my $l = $left) =~ s/([\0-\037\200-\377])/
                                         sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last "
                         . "chunk in response: \"$l\"\n";
                }
            } else {
                $raw = $left // '';
                $n--;
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $req_idx,
                                           $need_array);
                check_response_headers($block, $res, $raw_headers, $req_idx,
                                       $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $req_idx,
                                    $repeated_req_idx, $need_array);
            }

            if ($n || $req_idx < @$reqs - 1) {
                sleep parse_time($block->wait) if $block->wait;
                check_error_log($block, $res, $repeated_req_idx,
                                $need_array);
                check_access_log($block, $repeated_req_idx)
                    unless defined $block->ignore_response;
            }

            $req_idx++;
            last unless $n;
        }
    }

    sleep parse_time($block->wait) if $block->wait;
    check_error_log($block, $res, $repeated_req_idx, $need_array);
    check_access_log($block, $repeated_req_idx)
        unless defined $block->ignore_response;
}

sub run_tcp_server_tests ($$) {
    my ($block, $query_file) = @_;
    my $name = $block->name;
    # the fake server may still be busy; give it a moment to flush
    my $buf = '';
    if ($query_file) {
        for (1 .. 10) { last if -f $query_file; sleep 0.01 }
        if (open my $in, '<', $query_file) {
            local $/;
            $buf = <$in> // '';
            close $in;
        }
    }
    if (defined $block->tcp_query) {
        is_str($buf, expand_env_in_text($block->tcp_query, $name),
               "$name - tcp_query ok");
    }
    if (defined $block->tcp_query_len) {
        Test::More::is(length($buf), $block->tcp_query_len,
                       "$name - TCP query length ok");
    }
}

# Expected value for request #$req_idx: arrays are required when several
# requests are sent.
sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$req_idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return ref $value eq 'ARRAY' ? $value->[0] : $value;
}

sub check_error_code ($$$$) {
    my ($block, $res, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';
    if (defined $block->error_code_like) {
        my $val = get_indexed_value($name, $block->error_code_like, $req_idx,
                                    $need_array);
        like($code, qr/$val/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        my $val = get_indexed_value($name, $block->error_code, $req_idx,
                                    $need_array);
        $val =~ s/^\s+|\s+$//g if defined $val;
        Test::More::is($code, $val, "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers ($$$$) {
    my ($block, $raw_headers, $req_idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->raw_response_headers_like) {
        my $expected = get_indexed_value($name,
            $block->raw_response_headers_like, $req_idx, $need_array);
        like($raw_headers, qr/$expected/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $expected = get_indexed_value($name,
            $block->raw_response_headers_unlike, $req_idx, $need_array);
        unlike($raw_headers, qr/$expected/s,
               "$name - raw resp headers unlike");
    }
}

# "Name: value" lines => ordered [key, value] pairs (value undef for
# "!Name"); a repeated name keeps only its last value, like upstream's hash.
sub parse_headers ($) {
    my $s = shift // '';
    my (@keys, %h);
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next unless length $line;
        my ($key, $val);
        if ($line =~ s/^!\s*//) {
            $key = $line;
        } else {
            ($key, $val) = split /\s*:\s*/, $line, 2;
            $val //= '';
        }
        push @keys, $key unless exists $h{$key};
        $h{$key} = $val;
    }
    return map { [$_, $h{$_}] } @keys;
}

sub check_response_headers ($$$$$) {
    my ($block, $res, $raw_headers, $req_idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->response_headers) {
        my $spec = get_indexed_value($name, $block->response_headers,
                                     $req_idx, $need_array);
        for my $pair (parse_headers($spec)) {
            my ($key, $val) = @$pair;
            if (!defined $val) {
                unlike($raw_headers // '', qr/^\s*\Q$key\E\s*:/msi,
                       "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $val = expand_env_in_text($val, $name);
            my $actual = $res ? $res->header($key) : undef;
            Test::More::is($actual // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $spec = get_indexed_value($name, $block->response_headers_like,
                                     $req_idx, $need_array);
        for my $pair (parse_headers($spec)) {
            my ($key, $val) = @$pair;
            my $actual = $res ? $res->header($key) : undef;
            like($actual // '', qr/^$val$/, "$name - header $key like ok");
        }
    }
}

sub run_filter_helper ($$$) {
    my ($block, $filter, $content) = @_;
    return $filter->($content) if ref $filter eq 'CODE';
    bail_out($block->name . " - response_body_filters only supports code "
             . "refs and filter names") if ref $filter;
    my %f = (
        md5_hex  => sub { Digest::MD5::md5_hex($_[0]) },
        sha1_hex => sub { Digest::SHA::sha1_hex($_[0]) },
        uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
        ucfirst => sub { ucfirst $_[0] }, lcfirst => sub { lcfirst $_[0] },
        length => sub { length $_[0] },
    );
    my $code = $f{$filter} or bail_out($block->name . " - unknown filter, "
        . "\"$filter\", specified in the --- response_body_filters section");
    return $code->($content);
}

sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;
    my $filters = $block->response_body_filters;
    return unless defined $filters && $res && defined $res->content;
    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [ split /\s+/, $filters ];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {   # one filter list per request
        $filters = $filters->[$req_idx];
        bail_out($block->name . " - the --- response_body_filters array "
                 . "does not match request $req_idx") unless $filters;
    }
    my $new = $res->content;
    $new = run_filter_helper($block, $_, $new) for @$filters;
    $res->content($new);
}

# Compare strings; on mismatch show where they differ plus a unified diff
# (or plain Test::More::is output with no_long_string()).
sub is_str {
    my ($got, $expected, $desc) = @_;
    return like($got, $expected, $desc) if ref $expected eq 'Regexp';
    if ($NoLongString || !defined $got || !defined $expected) {
        return Test::More::is($got, $expected, $desc);
    }
    return Test::More::ok(1, $desc) if $got eq $expected;
    Test::More::ok(0, $desc);
    Test::More::diag(describe_difference($got, $expected));
    return 0;
}

sub describe_difference {
    my ($got, $expected) = @_;
    my $i = 0;
    my $max = min(length $got, length $expected);
    $i++ while $i < $max && substr($got, $i, 1) eq substr($expected, $i, 1);
    my $start = $i > 30 ? $i - 30 : 0;
    my $show = sub {
        my $s = substr($_[0], $start, 70);
        $s =~ s/\\/\\\\/g;
        $s =~ s/\n/\\n/g;
        $s =~ s/\r/\\r/g;
        $s =~ s/\t/\\t/g;
        $s =~ s/([\0-\037\177-\377])/sprintf('\x%02x', ord $1)/eg;
        ($start ? '...' : '') . $s . (length($_[0]) > $start + 70 ? '...' : '');
    };
    my $out = sprintf("         got: \"%s\"\n    expected: \"%s\"\n"
                      . "      length: %d (got) vs %d (expected)\n"
                      . "    strings begin to differ at char %d\n",
                      $show->($got), $show->($expected), length $got,
                      length $expected, $i + 1);
    if ("$got$expected" =~ /\n./s) {
        my $diff = Text::Diff::diff(\$expected, \$got,
            { STYLE => 'Unified', FILENAME_A => 'expected',
              FILENAME_B => 'got' });
        my @lines = split /^/, $diff;
        splice @lines, 200, @lines - 200, "... (diff truncated)\n"
            if @lines > 200;
        $out .= join '', @lines;
    }
    return $out;
}

sub check_response_body ($$$$$) {
    my ($block, $res, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->content : undef;

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if ($block->response_body_eval) {
            $expected = eval get_indexed_value($name,
                $block->response_body_eval, $req_idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body,
                                          $req_idx, $need_array);
        }
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = expand_env_in_text($expected, $name);
        }
        my $suffix = "(repeated req $repeated_req_idx, req $req_idx)";
        if (ref $expected) {
            like($content, $expected, "$name - response_body - like $suffix");
        } else {
            is_str($content, $expected,
                   "$name - response_body - response is expected $suffix");
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my ($patterns, $type) = defined $block->response_body_like
            ? ($block->response_body_like, 'like')
            : ($block->response_body_unlike, 'unlike');
        my $pat = get_indexed_value($name, $patterns, $req_idx, $need_array);
        if (!ref $pat) {
            $pat =~ s/\$ServerPort\b/$ServerPort/g;
            $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $pat = expand_env_in_text($pat, $name);
        }
        my $summary = trim($content) // '';
        my $desc = "$name - response_body_$type - response is expected "
                 . "($summary)";
        if ($type eq 'like') {
            like($content, qr/$pat/s, $desc);
        } else {
            unlike($content, qr/$pat/s, $desc);
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $repeated_req_idx, 0);
    }
}

#------------------------------------------------------------------------------
# Log checks
#------------------------------------------------------------------------------

# Normalize a pattern section (text lines, qr//, or array ref) to a list;
# $TEST_NGINX_* variables in string patterns are expanded.
sub pattern_list ($) {
    my $pats = shift;
    my @list;
    if (!ref $pats) {
        chomp $pats;
        @list = grep { length } split /\n+/, $pats;
    } elsif (ref $pats eq 'ARRAY') {
        @list = @$pats;
    } else {
        @list = ($pats);
    }
    return map { ref $_ ? $_ : expand_env_in_text($_) } @list;
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : index($line, $pat) >= 0;
}

# Each pattern must match some line: one pass/fail per pattern.
sub check_log_has ($$$$) {
    my ($name, $lines, $pats, $where) = @_;   # $where: "error.log (req 0)"
    my ($file, $suffix) = $where =~ /^(\S+)(.*)$/;
    my @pats = pattern_list($pats);
    for my $line (@$lines) {
        for my $pat (@pats) {
            next unless defined $pat;
            if (line_matches($line, $pat)) {
                pass("$name - pattern \"$pat\" matches a line in "
                     . "$file$suffix");
                undef $pat;
            }
        }
    }
    for my $pat (grep { defined } @pats) {
        fail("$name - pattern \"$pat\" should match a line in $file$suffix");
    }
}

# No pattern may match any line: one pass/fail per pattern.
sub check_log_lacks ($$$$) {
    my ($name, $lines, $pats, $where) = @_;
    my ($file, $suffix) = $where =~ /^(\S+)(.*)$/;
    for my $pat (pattern_list($pats)) {
        my $p = fmt_str("$pat");
        my $found;
        for my $i (0 .. $#$lines) {
            next unless line_matches($lines->[$i], $pat);
            my $ln = fmt_str($lines->[$i]);
            my $last = min($i + 10, $#$lines);
            my $more = join '', @$lines[$i + 1 .. $last];
            fail("$name - pattern \"$p\" should not match any line in $file "
                 . "but matches line \"$ln\"$suffix\n$more");
            $found = 1;
            last;
        }
        pass("$name - pattern \"$p\" does not match a line in $file$suffix")
            unless $found;
    }
}

sub check_error_log {
    my ($block, $res, $repeated_req_idx, $need_array, $lines) = @_;
    my $name = $block->name;
    my $suffix = " (req $repeated_req_idx)";

    if (defined(my $grep_pats = $block->grep_error_log)) {
        my $grep_pat = ref $grep_pats eq 'ARRAY'
                       ? $grep_pats->[$repeated_req_idx] : $grep_pats;
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- "
                 . "grep_error_log is defined") unless defined $expected;
        $expected = $expected->[$repeated_req_idx] if ref $expected eq 'ARRAY';
        $expected = expand_env_in_text($expected, $name);
        $lines ||= error_log_data();
        my $matched = '';
        for my $line (@$lines) {
            if (ref $grep_pat ? $line =~ /$grep_pat/ : $line =~ /\Q$grep_pat\E/)
            {
                $matched .= "$&\n" if $& !~ /\n/;
            }
        }
        is_str($matched, $expected,
               "$name - grep_error_log_out (req $repeated_req_idx)");
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- "
                 . "grep_error_log_out is defined");
    }

    my %seen_level;
    for my $sect (qw(error_log no_error_log)) {
        my $pats = $block->$sect;
        next unless defined $pats;
        for my $p (pattern_list($pats)) {
            my $s = "$p";
            $seen_level{$1} = 1 while $s =~ /\[(alert|crit|emerg)/g;
        }
        $lines ||= error_log_data();
        if ($sect eq 'error_log') {
            check_log_has($name, $lines, $pats, "error.log$suffix");
        } else {
            check_log_lacks($name, $lines, $pats, "error.log$suffix");
        }
    }

    $lines ||= error_log_data();
    for my $line (@$lines) {
        if ($line =~ /\[(alert|crit|emerg)\]/ && !$seen_level{$1}) {
            warn "WARNING: $name - " . fmt_str($line) . "\n";
        }
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            fail("$name - $l\n");
        }
    }
}

sub check_access_log ($$) {
    my ($block, $repeated_req_idx) = @_;
    my $name = $block->name;
    my $suffix = " (req $repeated_req_idx)";
    my $lines;
    if (defined $block->access_log) {
        $lines ||= access_log_data();
        check_log_has($name, $lines, $block->access_log, "access.log$suffix");
    }
    if (defined $block->no_access_log) {
        $lines ||= access_log_data();
        check_log_lacks($name, $lines, $block->no_access_log,
                        "access.log$suffix");
    }
}

# --- shutdown_error_log / --- no_shutdown_error_log: checked after nginx
# has been stopped at the end of the block.
sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    for my $sect (qw(shutdown_error_log no_shutdown_error_log)) {
        my $pats = $block->$sect;
        next unless defined $pats;
        if ($dry_run) {
            SKIP: {
                skip("$name - $sect - tests skipped due to $dry_run",
                     scalar pattern_list($pats));
            }
            next;
        }
        my $lines = error_log_data();
        if ($sect eq 'shutdown_error_log') {
            check_log_has($name, $lines, $pats, "error.log");
        } else {
            check_log_lacks($name, $lines, $pats, "error.log");
        }
    }
}

1;
