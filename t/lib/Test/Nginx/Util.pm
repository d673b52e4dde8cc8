# Copyright (C) ngx_ai_gateway contributors

package Test::Nginx::Util;

# Minimal, self-contained re-implementation of the infrastructure half of
# openresty/test-nginx's Test::Nginx::Util (which is not packaged by Debian):
#
#   * global settings (repeat_each, log_level, master_on, ...) and TEST_NGINX_*
#     environment handling, including $TEST_NGINX_* expansion;
#   * the server root (t/servroot) and the generated conf/nginx.conf;
#   * starting/stopping nginx as a managed child process ("daemon off", in its
#     own process group), optionally under valgrind, and scanning the valgrind
#     logs afterwards;
#   * the embedded fake TCP server used by the --- tcp_listen sections;
#   * error.log/access.log access and global cleanup (END block and signal
#     handlers), so that no nginx or helper process is left behind.
#
# The test-block logic (requests, response checks) lives in
# Test::Nginx::Socket.

use strict;
use warnings;

use base 'Exporter';

use Cwd ();
use Fcntl qw(:flock);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use POSIX qw(:sys_wait_h);
use Socket qw(SOCK_STREAM);
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    $ServerAddr $ServerName $ServerPort $ServerPortForClient
    $ServRoot $ServerRoot $HtmlDir $ConfDir $ConfFile $LogDir
    $ErrLogFile $AccLogFile $PidFile $NginxBinary $NginxVersion
    $RepeatEach $NoLongString $UseValgrind $NoClean $Verbose
    @BlockPreprocessors @TestCleanupHandlers

    repeat_each no_shuffle no_long_string log_level workers worker_connections
    master_on master_off master_process_enabled env_to_nginx no_root_location
    server_name server_addr server_port server_port_for_client server_root
    html_dir timeout config_preamble add_block_preprocessor add_cleanup_handler
    add_test_cleanup_handler no_nginx_manager use_hup check_accum_error_log

    bail_out parse_time expand_env_in_text trim fmt_str is_running
    get_canon_version init_runner setup_server_root write_user_files
    write_config_file start_nginx wait_nginx_ready wait_nginx_exit stop_nginx
    nginx_pid read_file_lines error_log_data access_log_data
    reset_error_log_pos valgrind_reports start_tcp_server stop_tcp_server
    cleanup
);

#------------------------------------------------------------------------------
# Settings (environment first, then the setter functions below)
#------------------------------------------------------------------------------

our $Verbose       = $ENV{TEST_NGINX_VERBOSE};
our $UseValgrind   = $ENV{TEST_NGINX_USE_VALGRIND};
our $NoClean       = $ENV{TEST_NGINX_NO_CLEAN};
our $LoadModules   = $ENV{TEST_NGINX_LOAD_MODULES};
our $Randomize     = $ENV{TEST_NGINX_RANDOMIZE};
our $Timeout       = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $LogLevel      = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $Workers           = 1;
our $WorkerConnections = 1024;
our $RepeatEach        = 1;
our $NoLongString;
our $NoRootLocation    = 0;
our $ConfigPreamble    = '';
our $ServerAddr        = '127.0.0.1';
our $ServerName        = 'localhost';
our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;
our @TestCleanupHandlers;

# Valgrind makes nginx 20-50x slower: scale the waits accordingly.
our $SlowFactor = $UseValgrind ? 5 : 1;
our $StartTimeout = $UseValgrind ? 30 : 10;        # seconds to wait for listen
our $StopTimeout  = $UseValgrind ? 60 : 10;        # seconds to wait for exit
our $LogSettle    = $UseValgrind ? 0.2 : 0.03;     # before reading the logs

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || find_in_path('nginx')
                   || '/usr/sbin/nginx';
our ($NginxVersion, $NginxRawVersion, $NginxV);

our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
if ($Randomize) {
    # parallel-friendly mode (prove -j): random port and private server root
    $ServerPort = gen_rand_port({});
}
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

our $ServRoot = $Randomize ? File::Spec->rel2abs("t/servroot_$ServerPort")
              : File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
our $ServerRoot;
*ServerRoot = \$ServRoot;   # alias, for test files using $ServerRoot

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $PidFile    = "$LogDir/nginx.pid";
our $StderrFile = "$LogDir/nginx.stderr";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $CacheDir   = "$ServRoot/cache";

# Make these usable as $TEST_NGINX_* in the test sections (and by %ENV in
# eval'd Perl code).
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
    if !defined $ENV{TEST_NGINX_SERVER_PORT} || $Randomize;
$ENV{TEST_NGINX_CLIENT_PORT} //= $ServerPortForClient;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
$ENV{TEST_NGINX_SERVROOT}    = $ServRoot;
$ENV{TEST_NGINX_HTML_DIR}  ||= $HtmlDir;
$ENV{TEST_NGINX_CONF_DIR}  ||= $ConfDir;
$ENV{TEST_NGINX_LOG_DIR}   ||= $LogDir;

# Per-block map TEST_NGINX_RAND_PORT_N => port (localized by the runner).
our $RandPorts = {};

# Process bookkeeping
our $MainPid = $$;
our $InSubprocess;
our $NginxPid;          # the nginx (or valgrind) child we manage
our $TcpServerPid;      # the fake TCP server child
our $TcpServerSock;     # its listening socket (parent copy)
our $ErrLogFilePos = 0;
our $MasterExplicit;    # master_on() was called by the test file

#------------------------------------------------------------------------------
# Setter/getter functions exported to test files
#------------------------------------------------------------------------------

sub repeat_each { $RepeatEach = shift if @_; $RepeatEach }
sub no_shuffle { }      # we never shuffle the blocks
sub no_long_string { $NoLongString = 1 }
sub log_level { $LogLevel = shift if @_; $LogLevel }
sub workers { $Workers = shift if @_; $Workers }
sub worker_connections { $WorkerConnections = shift if @_; $WorkerConnections }
sub master_on { $MasterProcessEnabled = 'on'; $MasterExplicit = 1 }
sub master_off { $MasterProcessEnabled = 'off'; $MasterExplicit = 0 }
sub master_process_enabled {
    if (@_) { $_[0] ? master_on() : master_off() }
    $MasterProcessEnabled eq 'on';
}
sub no_root_location { $NoRootLocation = 1 }
sub server_name { $ServerName = shift if @_; $ServerName }
sub server_addr { $ServerAddr = shift if @_; $ServerAddr }
sub server_port { $ServerPort = shift if @_; $ServerPort }
sub server_port_for_client {
    $ServerPortForClient = shift if @_;
    $ServerPortForClient;
}
sub server_root { $ServRoot }
sub html_dir { $HtmlDir }
sub timeout { $Timeout = shift if @_; $Timeout }
sub config_preamble { $ConfigPreamble = shift }
sub add_block_preprocessor(&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler { unshift @TestCleanupHandlers, shift }
sub no_nginx_manager { warn "no_nginx_manager() is not supported; ignored\n" }
sub use_hup { warn "use_hup() is not supported; ignored\n" }
sub check_accum_error_log { $CheckAccumErrLog = 1 }

sub env_to_nginx {
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

#------------------------------------------------------------------------------
# Small helpers
#------------------------------------------------------------------------------

sub find_in_path {
    my $prog = shift;
    for my $dir (split /:/, $ENV{PATH} // '') {
        my $p = "$dir/$prog";
        return $p if -f $p && -x _;
    }
    return undef;
}

sub bail_out {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_running {
    my $pid = shift;
    return defined $pid && $pid > 0 && kill(0, $pid);
}

# "100ms" => 0.1, "2s" => 2, "1.5" => 1.5
sub parse_time {
    my $tm = shift;
    return undef if !defined $tm;
    $tm =~ s/^\s+|\s+$//g;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm = $tm / 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

sub trim {
    my $s = shift;
    return undef if !defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    $s;
}

sub fmt_str {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    $str;
}

sub get_canon_version {
    sprintf "%d.%03d%03d", $_[0], $_[1], $_[2];
}

sub read_file_lines {
    my $file = shift;
    open my $in, '<', $file or return [];
    my @lines = <$in>;
    close $in;
    return \@lines;
}

sub slurp {
    my $file = shift;
    open my $in, '<', $file or return undef;
    local $/;
    my $s = <$in>;
    close $in;
    return $s;
}

# Is anything listening on the TCP port?  Uses /proc/net/tcp{,6} so that no
# probe connection shows up in nginx's (debug) error log.
sub port_listening {
    my $port = shift;
    my $hex = sprintf '%04X', $port;
    my $have_proc;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        $have_proc = 1;
        while (<$in>) {
            my @f = split ' ';
            next unless @f > 3 && $f[1] =~ /:([0-9A-F]{4})$/;
            return 1 if $1 eq $hex && $f[3] eq '0A';    # 0A = LISTEN
        }
    }
    return 0 if $have_proc;
    my $s = IO::Socket::INET->new(PeerAddr => $ServerAddr, PeerPort => $port,
                                  Proto => 'tcp', Timeout => 0.2);
    return $s ? 1 : 0;
}

# Pick a free TCP port that is not in %$used (and not the server port).
sub gen_rand_port {
    my ($used) = @_;
    for (1 .. 1000) {
        # below the default Linux ephemeral range (32768+)
        my $port = 10000 + int rand 22000;
        next if $used->{$port} || (defined $ServerPort && $port == $ServerPort);
        next if port_listening($port);
        my $sock = IO::Socket::INET->new(LocalAddr => '0.0.0.0',
                                         LocalPort => $port, Proto => 'tcp',
                                         ReuseAddr => 1, Listen => 1);
        next unless $sock;
        close $sock;
        return $port;
    }
    return undef;
}

# Expand $TEST_NGINX_* variables: $TEST_NGINX_RAND_PORT_N gets a free random
# port (stable within one block), other names are taken from %ENV; names not
# in %ENV are left alone (with a warning).  Array refs are expanded
# element-wise; other references (qr//, code) are returned untouched.
my %WarnedVars;
sub expand_env_in_text {
    my ($text, $name, $rand_ports) = @_;
    return $text if !defined $text;
    if (ref $text) {
        return [ map { expand_env_in_text($_, $name, $rand_ports) } @$text ]
            if ref $text eq 'ARRAY';
        return $text;
    }
    $rand_ports ||= $RandPorts;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            if (!defined $rand_ports->{$var}) {
                my %used = map { $_ => 1 } grep { defined } values %$rand_ports;
                $rand_ports->{$var} = gen_rand_port(\%used)
                    // bail_out("$name - cannot find a free port for $var");
            }
            $val = $rand_ports->{$var};
        } elsif (defined $ENV{$var}) {
            $val = $ENV{$var};
        } else {
            warn "WARNING: " . ($name // '') . " - environment variable $var"
                 . " is not defined; left unexpanded\n"
                unless $WarnedVars{$var}++;
            $val = "\$$var";
        }
        $val;
    }ge;
    return $text;
}

#------------------------------------------------------------------------------
# One-time initialisation (called by run_tests)
#------------------------------------------------------------------------------

my $Initialized;
our $LockFh;
sub init_runner {
    return if $Initialized++;

    bail_out("Cannot find the nginx executable ($NginxBinary); "
             . "set TEST_NGINX_BINARY")
        unless -x $NginxBinary;

    $NginxV = `$NginxBinary -V 2>&1`;
    if ($NginxV =~ m{nginx version: \S+?/(\d+)\.(\d+)\.(\d+)}) {
        $NginxRawVersion = "$1.$2.$3";
        $NginxVersion = get_canon_version($1, $2, $3);
    }

    if ($UseValgrind && !find_in_path('valgrind')) {
        bail_out("TEST_NGINX_USE_VALGRIND is set but valgrind is not in PATH");
    }

    # Serialize runs sharing this server root (and so, normally, the port):
    # concurrent runs would delete each other's files and kill each other's
    # nginx.  The lock is released automatically when we exit.
    make_path($ServRoot) unless -d $ServRoot;
    open $LockFh, '>>', "$ServRoot/.lock"
        or bail_out("Cannot open $ServRoot/.lock: $!");
    if (!flock($LockFh, LOCK_EX | LOCK_NB)) {
        warn "# $ServRoot is in use by another test run; waiting for it "
             . "(use TEST_NGINX_RANDOMIZE=1, or distinct "
             . "TEST_NGINX_SERVROOT and TEST_NGINX_SERVER_PORT, to run "
             . "in parallel)\n";
        my $t0 = time;
        until (flock($LockFh, LOCK_EX | LOCK_NB)) {
            bail_out("$ServRoot still locked by another test run after "
                     . "300s") if time - $t0 > 300;
            sleep 0.1;
        }
    }

    # Kill an nginx left over by an interrupted earlier run (only if the pid
    # file really points to an nginx/valgrind process).
    if (-f $PidFile) {
        my $pid = slurp($PidFile) // '';
        $pid =~ s/\s+//g;
        if ($pid =~ /^\d+$/ && is_running($pid)) {
            my $cmd = slurp("/proc/$pid/cmdline") // '';
            if ($cmd =~ /nginx|valgrind|memcheck/) {
                warn "WARNING: killing stale nginx process $pid\n";
                kill 'KILL', $pid;
                for (1 .. 100) { last unless is_running($pid); sleep 0.01 }
            }
        }
        unlink $PidFile;
    }
}

#------------------------------------------------------------------------------
# Server root and configuration
#------------------------------------------------------------------------------

sub setup_server_root {
    if (-d $ServRoot) {
        # only remove what we create ourselves
        remove_tree($ConfDir, $LogDir, $HtmlDir, $CacheDir,
                    glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));
    }
    for my $d ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $d;
        make_path($d) or bail_out("Failed to mkdir $d: $!");
    }
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
    $ErrLogFilePos = 0;
}

# --- user_files: ">>> name [touch -t date]" lines followed by the content,
# or (eval) an array ref of [name, content, date] triples.
sub write_user_files {
    my ($block) = @_;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - --- user_files: only scalar or ARRAY accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1) or bail_out("$name - Cannot create directory $1");
        }
        $body = expand_env_in_text($body, $name);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - touch -t '$date' $path failed");
        }
    }
}

sub write_config_file {
    my ($block) = @_;
    my $name = $block->name;

    my $config      = expand_env_in_text($block->config // '', $name);
    my $http_config = expand_env_in_text($block->http_config // '', $name);
    my $main_config = expand_env_in_text($block->main_config // '', $name);
    my $post_main_config =
        expand_env_in_text($block->post_main_config // '', $name);
    my $server_name = $block->server_name // $ServerName;
    $server_name =~ s/\\/\\\\/g;
    $server_name =~ s/'/\\'/g;

    my $log_level = $block->log_level || $LogLevel;
    $log_level =~ s/^\s+|\s+$//g;

    # Valgrind mode runs a single process by default (master_on() honoured).
    my $master = ($UseValgrind && !$MasterExplicit) ? 'off'
               : $MasterProcessEnabled;

    my $load_modules = '';
    for my $m (grep { length } split /\s+/, $LoadModules // '') {
        $m = File::Spec->rel2abs($m) unless $m =~ m{^/};
        $load_modules .= "load_module $m;\n";
    }

    my $env = join '', map { my $v = $_; $v = "'$v'" if $v =~ /\s/;
                             "env $v;\n" } @EnvToNginx;

    # keep every temp path inside the server root (never /var/lib/nginx)
    my $temp_paths = '';
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $t =~ /^(fastcgi|uwsgi|scgi)$/
                && ($NginxV // '') =~ /--without-http_${t}_module/;
        next if $http_config =~ /\b${t}_temp_path\b/;
        $temp_paths .= "    ${t}_temp_path $ServRoot/${t}_temp;\n";
    }

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = $> == 0 ? "user root;\n" : '';

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!");
    print $out <<_EOC_;
$load_modules
worker_processes  $Workers;
daemon off;
master_process $master;
error_log $ErrLogFile $log_level;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
$temp_paths
    default_type text/plain;
    keepalive_timeout  68;

$http_config

    server {
        listen          $ServerPort;
        server_name     '$server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location
    }
}

$post_main_config

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}

$user
_EOC_
    close $out;
}

#------------------------------------------------------------------------------
# nginx process management
#------------------------------------------------------------------------------

sub nginx_pid { $NginxPid }

sub valgrind_cmd {
    my @cmd = ('valgrind', '-q');
    if ($UseValgrind =~ /^\d+$/) {
        push @cmd, qw(--tool=memcheck --leak-check=full
                      --show-possibly-lost=no --num-callers=30
                      --error-exitcode=0 --gen-suppressions=all);
    } else {
        push @cmd, split ' ', $UseValgrind;    # custom valgrind options
    }
    push @cmd, "--log-file=$LogDir/valgrind.%p.log"
        unless grep { /^--log-file/ } @cmd;
    push @cmd, '--suppressions=' . File::Spec->rel2abs('valgrind.suppress')
        if -f 'valgrind.suppress';
    return @cmd;
}

# Fork+exec nginx in the foreground ("daemon off") in its own process group,
# stdout/stderr going to logs/nginx.stderr.  Returns the pid.
sub start_nginx {
    my (%opts) = @_;
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    push @cmd, '-e', $ErrLogFile
        if !defined $NginxVersion || $NginxVersion >= 1.019005;
    unshift @cmd, valgrind_cmd() if $opts{valgrind};

    warn "starting: @cmd\n" if $Verbose;

    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        setpgrp(0, 0);
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE ALRM);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $StderrFile;
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    $NginxPid = $pid;
    return $pid;
}

# Wait until nginx listens on the server port.  Returns (1) when ready or
# (0, $wait_status) if it exited, or (0, undef) on timeout.
sub wait_nginx_ready {
    my ($pid, $max) = @_;
    $max //= $StartTimeout;
    my $t0 = time;
    my $step = 0.002;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            undef $NginxPid;
            return (0, $?);
        }
        return (1) if port_listening($ServerPort);
        return (0, undef) if time - $t0 > $max;
        sleep $step;
        $step = 0.02 if ($step *= 1.5) > 0.02;
    }
}

# Wait for the nginx child to exit by itself (must_die).  Returns the wait
# status, or undef if it is still running after $max seconds (or once it has
# been listening for $grace seconds).
sub wait_nginx_exit {
    my ($pid, $max, $grace) = @_;
    my $t0 = time;
    my $listening_since;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            undef $NginxPid;
            return $?;
        }
        my $now = time;
        return undef if $now - $t0 > $max;
        if (port_listening($ServerPort)) {
            $listening_since //= $now;
            return undef if $now - $listening_since > $grace;
        }
        sleep 0.01;
    }
}

# Stop the managed nginx: SIGQUIT, wait, then SIGTERM/SIGKILL the whole
# process group if needed.  Returns a hash ref:
#   { status => wait status or undef, early => exited before we asked,
#     forced => had to be killed }
sub stop_nginx {
    my $pid = $NginxPid;
    return undef unless $pid;
    my %res;
    if (waitpid($pid, WNOHANG) == $pid) {
        $res{status} = $?;
        $res{early} = 1;
    } else {
        kill 'QUIT', $pid;
        my $t0 = time;
        my $step = 0.002;
        my $got;
        while (time - $t0 < $StopTimeout) {
            if (waitpid($pid, WNOHANG) == $pid) { $got = 1; last }
            sleep $step;
            $step = 0.02 if ($step *= 1.5) > 0.02;
        }
        if ($got) {
            $res{status} = $?;
        } else {
            warn "WARNING: nginx (pid $pid) did not exit after SIGQUIT; "
                 . "killing it\n";
            kill 'TERM', $pid;
            for (1 .. 50) {
                if (waitpid($pid, WNOHANG) == $pid) { $got = 1; last }
                sleep 0.02;
            }
            if (!$got) {
                kill 'KILL', -$pid;
                kill 'KILL', $pid;
                waitpid($pid, 0);
            }
            $res{forced} = 1;
        }
    }
    # any worker/helper left in nginx's process group?
    kill 'KILL', -$pid if kill 0, -$pid;
    undef $NginxPid;
    unlink $PidFile;
    return \%res;
}

# Valgrind reports that indicate real problems (valgrind -q only prints
# errors and leak records).
sub valgrind_reports {
    my @reports;
    for my $f (sort glob "$LogDir/valgrind.*.log") {
        my $text = slurp($f) // next;
        next unless $text =~ /Invalid\ (?:read|write|free)
                             | uninitialised
                             | unaddressable
                             | (?:definitely|indirectly)\ lost
                             | Mismatched\ free
                             | Source\ and\ destination\ overlap
                             | Jump\ to\ the\ invalid\ address
                             | Process\ terminating/x;
        push @reports, "$f:\n$text";
    }
    return @reports;
}

#------------------------------------------------------------------------------
# Logs
#------------------------------------------------------------------------------

sub reset_error_log_pos { $ErrLogFilePos = 0 }

# New error.log lines since the previous call (like upstream), after a short
# settle delay for lines logged after the connection was closed.
sub error_log_data {
    sleep $LogSettle;
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0 if $ErrLogFilePos && !$CheckAccumErrLog;
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data {
    sleep $LogSettle;
    return read_file_lines($AccLogFile);
}

#------------------------------------------------------------------------------
# Fake TCP server (--- tcp_listen): accepts ONE connection, reads the query,
# optionally waits, sends --- tcp_reply (string, array ref of chunks or code
# ref), then closes (unless --- tcp_no_close).
#------------------------------------------------------------------------------

sub start_tcp_server {
    my ($block, $target, $query_file) = @_;
    my $name = $block->name;

    my $reply = $block->tcp_reply;
    if (!defined $reply && !defined $block->tcp_shutdown) {
        bail_out("$name - no --- tcp_reply specified but --- tcp_listen "
                 . "is specified");
    }

    my $req_len = $block->tcp_query_len;
    if (!defined $req_len && defined $block->tcp_query
        && !ref $block->tcp_query)
    {
        $req_len = length expand_env_in_text($block->tcp_query, $name);
    }

    my ($sock, $err);
    for (1 .. 30) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                          LocalPort => $target,
                                          Proto => 'tcp', ReuseAddr => 1,
                                          Listen => 5);
        } elsif ($target =~ /\S+\.sock$/) {
            unlink $target if -e $target;
            $sock = IO::Socket::UNIX->new(Local => $target,
                                          Type => SOCK_STREAM, Listen => 5);
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock;
        $err = $!;
        last unless $err =~ /in use/i;
        sleep 0.1;
    }
    bail_out("$name - failed to create the tcp listening socket on "
             . "$target: $err") unless $sock;

    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP ALRM);
        alarm(60 * $SlowFactor);    # never outlive a broken test run
        eval { serve_tcp_client($block, $sock, $reply, $req_len, $query_file) };
        warn "WARNING: $name - TCP server: $@" if $@;
        POSIX::_exit(0);
    }
    $TcpServerPid = $pid;
    $TcpServerSock = $sock;
    warn "started TCP server $pid on $target\n" if $Verbose;
    return $sock;
}

sub serve_tcp_client {
    my ($block, $sock, $reply, $req_len, $query_file) = @_;
    my $name = $block->name;

    my $client;
    until ($client = $sock->accept) {
        warn "WARNING: $name - TCP server: failed to accept: $!\n";
        sleep 0.015;
    }

    my ($no_read, $no_write);
    if (defined(my $how = $block->tcp_shutdown)) {
        my $d = parse_time($block->tcp_shutdown_delay);
        sleep $d if $d;
        $client->shutdown($how);
        if ($how == 0 || $how == 2) { $no_read = 1 } else { $no_write = 1 }
    }

    my $buf = '';
    unless ($no_read) {
        my $auto = $block->tcp_query_auto_timeout;
        my $sel = IO::Select->new($client);
        while (1) {
            if (defined $auto) {
                last unless $sel->can_read(length $auto ? $auto : 0.1);
            }
            my $b;
            my $n = sysread($client, $b, 4096);
            last if !$n;    # EOF or error
            $buf .= $b;
            if ($query_file) {   # flush what we have (atomic rename)
                open my $out, '>', "$query_file.tmp" or die "open: $!\n";
                binmode $out;
                print $out $buf;
                close $out;
                rename "$query_file.tmp", $query_file or die "rename: $!\n";
            }
            last if !defined $auto && (!$req_len || length $buf >= $req_len);
        }
    }

    my $delay = parse_time($block->tcp_reply_delay);
    sleep $delay if $delay;

    if (!$no_write && defined $reply) {
        $reply = $reply->($buf) if ref $reply eq 'CODE';
        for my $chunk (ref $reply eq 'ARRAY' ? @$reply : ($reply)) {
            next unless defined $chunk && length $chunk;
            my $off = 0;
            while ($off < length $chunk) {
                my $n = syswrite($client, $chunk, length($chunk) - $off, $off);
                if (!defined $n) {
                    warn "WARNING: $name - tcp server failed to send "
                         . "reply: $!\n";
                    last;
                }
                $off += $n;
            }
        }
    }

    if (defined $block->tcp_no_close) {
        sleep 1 while 1;    # until killed by the runner
    }
    close $client;
    close $sock;
}

sub stop_tcp_server {
    if (defined $TcpServerPid) {
        kill 'KILL', $TcpServerPid;
        waitpid($TcpServerPid, 0);
        undef $TcpServerPid;
    }
    if (defined $TcpServerSock) {
        close $TcpServerSock;
        undef $TcpServerSock;
    }
}

#------------------------------------------------------------------------------
# Cleanup: never leave nginx or helper processes behind
#------------------------------------------------------------------------------

sub cleanup {
    my ($at_exit) = @_;
    return if $InSubprocess || $$ != $MainPid;
    for my $hdl (@CleanupHandlers) { eval { $hdl->() } }
    stop_tcp_server();
    if ($NginxPid) {
        if ($at_exit && $NoClean) {
            warn "TEST_NGINX_NO_CLEAN: leaving nginx (pid $NginxPid) "
                 . "running, server root $ServRoot\n";
            undef $NginxPid;
        } else {
            stop_nginx();
        }
    }
}

for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub {
        if (!$InSubprocess && $$ == $MainPid) {
            local $NoClean;    # interrupted: always kill nginx
            cleanup();
        }
        $SIG{$sig} = 'DEFAULT';
        kill $sig, $$;
        POSIX::_exit(1);
    };
}

END {
    local $?;    # don't clobber Test::Builder's exit code
    if (!$InSubprocess && $$ == $MainPid) {
        cleanup(1);
        if ($Randomize && !$NoClean && $ServRoot =~ m{/t/servroot_\d+$}
            && -d $ServRoot)
        {
            remove_tree($ServRoot);
        }
    }
}

1;
