# Copyright (C) ngx_ai_gateway contributors

package AIGW::Mock;

# Starts t/mock/provider.js (the mock LLM-provider upstream) for one test file.
#
#   use lib 't/lib';
#   use AIGW::Mock;                 # exports start_mock mock_get mock_post ...
#   my $m = start_mock();           # or AIGW::Mock->start()
#   # now $ENV{TEST_NGINX_MOCK_PORT}, TEST_NGINX_MOCK_TLS_PORT,
#   # TEST_NGINX_MOCK_BADTLS_PORT and TEST_NGINX_CERT_DIR are set.
#   mock_reset();  my $log = mock_log();   # admin API (plain port)
#
# The node child is killed from an END block, on INT/TERM/HUP, and - should
# this process be SIGKILLed - exits by itself when its stdin pipe reaches EOF
# or it gets re-parented. Environment knobs: AIGW_MOCK_NODE (node binary),
# AIGW_MOCK_LOG (file receiving the mock's stderr; default: inherit stderr),
# AIGW_MOCK_START_TIMEOUT (seconds, default 5).

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use HTTP::Tiny ();
use IO::Handle ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(start_mock stop_mock mock_get mock_post mock_reset mock_log mock_wait);

our $T_DIR    = abs_path(dirname(abs_path(__FILE__)) . '/../..');    # <repo>/t
our $CERT_DIR = "$T_DIR/.certs";

my $Instance;    # one mock per test process
my $JSON = JSON::PP->new->utf8->canonical;

# ------------------------------------------------------------------ certs --

# Create t/.certs/* via certs.sh unless present; safe under `prove -j`.
sub ensure_certs {
    my @need = qw(ca.crt ca.key server.crt server.key bad-ca.crt bad-ca.key
                  bad.crt bad.key ca-bundle-with-test-ca.crt);
    return $CERT_DIR unless grep { !-s "$CERT_DIR/$_" } @need;
    mkdir $CERT_DIR unless -d $CERT_DIR;
    open my $lock, '>>', "$CERT_DIR/.lock" or die "AIGW::Mock: $CERT_DIR/.lock: $!";
    flock($lock, LOCK_EX) or die "AIGW::Mock: flock: $!";
    local $ENV{AIGW_CERTS_LOCKED} = 1;
    system('sh', "$T_DIR/lib/AIGW/certs.sh", $CERT_DIR) == 0
        or die "AIGW::Mock: certs.sh failed (exit $?)\n";
    close $lock;
    return $CERT_DIR;
}

# ---------------------------------------------------------------- process --

sub start_mock { __PACKAGE__->start(@_) }

sub start {
    my ($class, %opt) = @_;
    return $Instance if $Instance && $Instance->{pid} && $Instance->{owner} == $$;

    ensure_certs();
    my $node    = $ENV{AIGW_MOCK_NODE} || 'node';
    my $timeout = $opt{timeout} || $ENV{AIGW_MOCK_START_TIMEOUT} || 5;

    pipe(my $in_r,  my $in_w)  or die "AIGW::Mock: pipe: $!";
    pipe(my $out_r, my $out_w) or die "AIGW::Mock: pipe: $!";
    STDOUT->flush; STDERR->flush;
    my $pid = fork();
    die "AIGW::Mock: fork: $!" unless defined $pid;
    if ($pid == 0) {    # child: stdin = lifeline pipe, stdout = ready pipe
        open STDIN,  '<&', $in_r  or POSIX::_exit(126);
        open STDOUT, '>&', $out_w or POSIX::_exit(126);
        if ($ENV{AIGW_MOCK_LOG}) { open STDERR, '>>', $ENV{AIGW_MOCK_LOG} or POSIX::_exit(126) }
        { exec $node, "$T_DIR/mock/provider.js", '--host', '127.0.0.1',
            '--cert-dir', $CERT_DIR, '--fixtures', "$T_DIR/fixtures" };
        print STDERR "AIGW::Mock: exec $node: $!\n";
        POSIX::_exit(127);
    }
    close $in_r; close $out_w;

    my $self = bless { pid => $pid, owner => $$, stdin => $in_w, cert_dir => $CERT_DIR }, $class;
    $Instance = $self;
    install_signal_handlers();

    # Wait for "MOCK_READY {json}" on the child's stdout.
    my ($buf, $deadline, $sel) = ('', time + $timeout, IO::Select->new($out_r));
    while ($buf !~ /\n/) {
        my $left = $deadline - time;
        if ($left <= 0) { $self->stop; die "AIGW::Mock: mock not ready after ${timeout}s\n" }
        if ($sel->can_read($left > 0.1 ? 0.1 : $left)) {
            my $n = sysread($out_r, $buf, 4096, length $buf);
            if (!$n) { $self->stop; die "AIGW::Mock: mock exited during startup (see stderr)\n" }
        }
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            die "AIGW::Mock: mock exited during startup (status $?)\n";
        }
    }
    close $out_r;
    my ($json) = $buf =~ /^MOCK_READY (\{.*\})$/m
        or do { $self->stop; die "AIGW::Mock: unexpected startup output: $buf\n" };
    my $ports = $JSON->decode($json);
    @$self{qw(port tls_port badtls_port)} = @$ports{qw(port tls_port badtls_port)};

    # Confirm every port accepts connections.
    for my $p (@$self{qw(port tls_port badtls_port)}) {
        until (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p, Proto => 'tcp', Timeout => 1)) {
            if (time > $deadline) { $self->stop; die "AIGW::Mock: port $p not accepting\n" }
            sleep 0.02;
        }
    }

    $ENV{TEST_NGINX_MOCK_PORT}        = $self->{port};
    $ENV{TEST_NGINX_MOCK_TLS_PORT}    = $self->{tls_port};
    $ENV{TEST_NGINX_MOCK_BADTLS_PORT} = $self->{badtls_port};
    $ENV{TEST_NGINX_MOCK_DNS_PORT}    = $ports->{dns_port};
    $ENV{TEST_NGINX_CERT_DIR}         = $CERT_DIR;
    return $self;
}

sub stop_mock { $Instance->stop if $Instance }

# Kill the child (TERM, then KILL after 2 s) and reap it; keeps $? intact.
sub stop {
    my $self = shift;
    return unless $self->{pid} && $self->{owner} == $$;    # not in forked children
    local ($?, $!);
    my $pid = delete $self->{pid};
    close delete $self->{stdin} if $self->{stdin};
    kill 'TERM', $pid;
    my $deadline = time + 2;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        return if $r == $pid || $r == -1;
        sleep 0.01;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub port        { $_[0]{port} }
sub tls_port    { $_[0]{tls_port} }
sub badtls_port { $_[0]{badtls_port} }
sub cert_dir    { $_[0]{cert_dir} }
sub pid         { $_[0]{pid} }

my %Installed;
sub install_signal_handlers {
    for my $sig (qw(INT TERM HUP)) {
        next if $Installed{$sig}++;
        my $old = $SIG{$sig};
        next if defined $old && $old eq 'IGNORE';    # e.g. INT in background jobs
        $SIG{$sig} = sub {
            stop_mock();
            if (ref $old eq 'CODE') { $old->(@_); return }
            $SIG{$sig} = 'DEFAULT';
            kill $sig, $$;    # die of the signal, as without us
        };
    }
}

END { stop_mock() }

# ----------------------------------------------------------- admin client --

sub _url {
    my $path = shift;
    die "AIGW::Mock: mock not started\n" unless $Instance && $Instance->{port};
    return "http://127.0.0.1:$Instance->{port}$path";
}

sub _decode {
    my ($res) = @_;
    die "AIGW::Mock: request failed: $res->{status} $res->{content}\n" if $res->{status} == 599;
    my $data = eval { $JSON->decode($res->{content}) };
    return defined $data ? $data : $res->{content};    # non-JSON: raw string
}

# mock_get($path [, \%headers]) -> decoded JSON body (any status)
sub mock_get {
    my ($path, $headers) = @_;
    my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    return _decode($http->get(_url($path), { headers => $headers || {} }));
}

# mock_post($path [, $body [, \%headers]]) -> decoded JSON body (any status)
sub mock_post {
    my ($path, $body, $headers) = @_;
    my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    return _decode($http->post(_url($path),
        { headers => $headers || {}, content => defined $body ? $body : '' }));
}

sub mock_reset { mock_post('/__mock/reset') }
sub mock_log   { mock_get('/__mock/log') }

# mock_wait(sub { my $log = shift; ... true when done }, $timeout_s = 5)
# Polls /__mock/log until the predicate holds; returns the log (or undef).
sub mock_wait {
    my ($pred, $timeout) = @_;
    my $deadline = time + ($timeout || 5);
    while (1) {
        my $log = mock_log();
        return $log if $pred->($log);
        return undef if time > $deadline;
        sleep 0.05;
    }
}

1;
