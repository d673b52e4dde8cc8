# Copyright (C) ngx_ai_gateway contributors

# Redis access control: AUTH with a password read from a file, an ACL user
# ("AUTH user password"), a database index (SELECT), against real
# redis-servers started here (--requirepass, --user).  A wrong or missing
# password makes the store "down": MISS, answered by the provider, "AUTH
# failed" in the log, and the password nowhere in the log, even at debug
# level.  A declared server is shared by the locations that name it (one
# connection per worker).  Bad password files are refused when the
# configuration is read (nginx -t).

use lib 't/lib';
use AIGW::Test;
use AIGW::Redis;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use File::Temp ();
use File::Copy ();
use File::Basename ();
use HTTP::Tiny ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();

our $HT = HTTP::Tiny->new(timeout => 20, keep_alive => 0);

our ($PASS, $WRONG, $ACL_PASS, $DIR, @PIDS);

BEGIN {
    $PASS = 'right-Pass-083-x9';
    $WRONG = 'wrong-Pass-083-q7';
    $ACL_PASS = 'acl-Pass-083-k2';

    $ENV{TEST_NGINX_AUTH_PORT} = redis_free_port();
    $ENV{TEST_NGINX_ACL_PORT} = redis_free_port();
    $ENV{TEST_NGINX_OTHER_PORT} = redis_free_port();
    $ENV{TEST_NGINX_NODE2_PORT} = redis_free_port();

    # the password files: mode 0600, as docs/cache.md says; "right" ends
    # with a line break, which is not part of the password

    $DIR = File::Temp::tempdir('t083-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $DIR;
    $ENV{TEST_NGINX_PASS_DIR} = $DIR;

    my %files = (
        'right.pass'   => "$PASS\n",
        'wrong.pass'   => $WRONG,
        'acl.pass'     => "$ACL_PASS\r\n",
        'empty.pass'   => "\n",
        'twoline.pass' => "gw\n$PASS\n",
        'world.pass'   => "$PASS\n",
    );
    for my $f (keys %files) {
        open my $fh, '>', "$DIR/$f" or die "$DIR/$f: $!";
        print $fh $files{$f};
        close $fh;
        chmod 0600, "$DIR/$f";
    }
    chmod 0644, "$DIR/world.pass";
    mkdir "$DIR/dir.pass";
}

push @PIDS, redis_start($ENV{TEST_NGINX_AUTH_PORT}, '--requirepass', $PASS);
push @PIDS, redis_start($ENV{TEST_NGINX_ACL_PORT},
                        '--user', 'default', 'off',
                        '--user', 'gw', 'on', ">$ACL_PASS", '~t083:*',
                        '+@all');
push @PIDS, redis_start($ENV{TEST_NGINX_OTHER_PORT});

END {
    local $?;
    redis_stop($_) for @PIDS;
}

sub auth_redis {
    redis_cmd({ port => $ENV{TEST_NGINX_AUTH_PORT}, auth => [$PASS] }, @_);
}

sub acl_redis {
    redis_cmd({ port => $ENV{TEST_NGINX_ACL_PORT},
                auth => ['gw', $ACL_PASS] }, @_);
}

sub gw {
    my ($path, $body, %h) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    $port = $ENV{TEST_NGINX_NODE2_PORT} if $path =~ s{^/NODE2}{};
    return $HT->request('POST', "http://127.0.0.1:$port$path",
        { headers => { 'content-type' => 'application/json', %h },
          content => $body });
}

sub status_of { $_[0]{headers}{'cf-aig-cache-status'} // '' }

sub upstream_count { scalar @{ mock_log()->{requests} } }

sub wait_for (&) {
    my $pred = shift;
    my $deadline = time + 5;
    while (time < $deadline) {
        return 1 if $pred->();
        sleep 0.05;
    }
    return 0;
}

sub error_log_text {
    open my $f, '<', $Test::Nginx::Util::ErrLogFile or return '';
    local $/;
    return scalar <$f>;
}

# no password, in any form, in the log

sub no_secret {
    my $n = shift;
    my $log = error_log_text();
    for my $s ($PASS, $WRONG, $ACL_PASS) {
        unlike($log, qr/\Q$s\E/, "$n - no password in the log");
        my $q = substr($s, 0, 10);
        unlike($log, qr/\Q$q\E/, "$n - nor a part of one");
    }
}

add_block_preprocessor(sub {
    my $block = shift;

    unless (defined $block->request) {
        $block->set_value("request", "GET /ping");
        $block->set_value("response_body", "ok");
    }

    if (!defined $block->no_error_log && !defined $block->must_die) {
        $block->set_value("no_error_log",
                          "[alert]\n[crit]\n[emerg]\n$PASS\n$WRONG\n"
                          . "$ACL_PASS\n");
    }
});

my %scenario;

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $name = $block->name;
    for my $k (sort keys %scenario) {
        if ($name =~ /\Q$k\E/) {
            mock_reset();
            auth_redis('FLUSHALL');
            acl_redis('FLUSHALL');
            $scenario{$k}->($name);
        }
    }
});

my $chat = "/v1/acct/gw/openai/chat/completions";

# a MISS stored, then a HIT; returns the Redis key (in $redis's db)

sub hit_works {
    my ($n, $path, $redis, @db) = @_;
    my $b = '{"t083":' . int(rand(1e9)) . '}';
    my $r1 = gw($path, $b);
    is($r1->{status}, 200, "$n - 200");
    is(status_of($r1), 'MISS', "$n - MISS");
    my $keys;
    ok(wait_for { $keys = $redis->(@db, 'KEYS', 't083:*'); @$keys == 1 },
       "$n - stored");
    my $r2 = gw($path, $b);
    is(status_of($r2), 'HIT', "$n - then a HIT");
    is($r2->{content}, $r1->{content}, "$n - the same answer");
    is(upstream_count(), 1, "$n - one provider call");
    no_secret($n);
    return $keys->[0];
}

sub store_down {
    my ($n, $path) = @_;
    my $b = '{"t083":' . int(rand(1e9)) . '}';
    for my $i (1 .. 3) {
        my $t0 = time;
        my $r = gw($path, $b);
        is($r->{status}, 200, "$n - request $i answered");
        is(status_of($r), 'MISS', "$n - as a MISS");
        cmp_ok(time - $t0, '<', 1.5, "$n - without waiting long");
    }
    is(upstream_count(), 3, "$n - each by the provider");
    no_secret($n);
}

$scenario{'right password'} = sub {
    my $n = shift;
    hit_works($n, $chat, \&auth_redis);
};

$scenario{'wrong password'} = sub {
    my $n = shift;
    store_down($n, $chat);
    is(scalar @{ auth_redis('KEYS', '*') }, 0, "$n - nothing stored");
};

$scenario{'no password'} = sub {
    my $n = shift;
    store_down($n, $chat);
};

$scenario{"ACL user, a declared server"} = sub {
    my $n = shift;
    my $k = hit_works($n, $chat, \&acl_redis);
    like(acl_redis('GET', $k), qr/^AIG2/, "$n - the entry, read as gw");
};

$scenario{'unknown ACL user'} = sub {
    my $n = shift;
    store_down($n, $chat);
};

$scenario{'database index'} = sub {
    my $n = shift;
    my $db5 = sub { redis_cmd({ port => $ENV{TEST_NGINX_AUTH_PORT},
                                auth => [$PASS], db => 5 }, @_) };
    my $k = hit_works($n, $chat, $db5);
    like($db5->('GET', $k), qr/^AIG2/, "$n - the entry is in db 5");
    is(scalar @{ auth_redis('KEYS', '*') }, 0, "$n - not in db 0");
    $db5->('FLUSHDB');
};

$scenario{'database out of range'} = sub {
    my $n = shift;
    store_down($n, $chat);
};

$scenario{'one connection'} = sub {
    my $n = shift;
    my $other = sub { redis_cmd({ port => $ENV{TEST_NGINX_OTHER_PORT} }, @_) };
    $other->('FLUSHALL');
    my $b = '{"t083":"shared"}';
    gw($chat, $b);
    ok(wait_for { @{ $other->('KEYS', 't083:*') } == 1 }, "$n - stored");
    is(status_of(gw("/NODE2$chat", $b)), 'HIT',
       "$n - the other server finds it");
    is(status_of(gw($chat, $b)), 'HIT', "$n - and the first one");
    my $clients = $other->('CLIENT', 'LIST');
    my $nginx = grep { !/cmd=client/ } split /\n/, $clients;
    is($nginx, 1, "$n - both use one connection of the worker");
};

# nginx -t with a configuration of its own: the message, the exit status;
# run as "nobody" too when we are root, so that a file mode 0600 of root's
# is really unreadable

sub nginx_t {
    my ($param, @as) = @_;
    my $d = File::Temp::tempdir('t083t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $d;
    mkdir "$d/logs";
    chmod 0777, "$d/logs";
    open my $f, '>', "$d/nginx.conf" or die;

    # the modules from $d: the tree may sit where "nobody" cannot read
    # (a clone in root's home, mode 0700 on Debian)
    for my $m (split ' ', $ENV{TEST_NGINX_LOAD_MODULES}) {
        my $copy = "$d/" . File::Basename::basename($m);
        File::Copy::copy($m, $copy) or die "copy $m: $!";
        chmod 0644, $copy;
        print $f "load_module $copy;\n";
    }
    print $f "error_log stderr;\nevents {}\n"
           . "http { ai_gateway_redis r 127.0.0.1:6379 $param; }\n";
    close $f;
    chmod 0644, "$d/nginx.conf";
    my $out = `@as $Test::Nginx::Util::NginxBinary -t -p $d/ -c $d/nginx.conf -e stderr 2>&1`;
    return ($? >> 8, $out);
}

$scenario{'nginx -t'} = sub {
    my $n = shift;

    my ($rc, $out) = nginx_t("password_file=$DIR/right.pass");
    is($rc, 0, "$n - a good file passes") or diag($out);

    ($rc, $out) = nginx_t("password_file=$DIR/missing.pass");
    isnt($rc, 0, "$n - a missing file fails");
    like($out, qr/cannot open the Redis password file "\Q$DIR\E\/missing.pass" \(2: No such file or directory\)/,
         "$n - saying so");

    ($rc, $out) = nginx_t("password_file=$DIR/world.pass");
    is($rc, 0, "$n - a file every user can read passes");
    like($out, qr/\[warn\] .*the Redis password file "\Q$DIR\E\/world.pass" can be read by every user/,
         "$n - with a warning");
    unlike($out, qr/\Q$PASS\E/, "$n - without showing it");

    ($rc, $out) = nginx_t("password_file=$DIR/twoline.pass");
    isnt($rc, 0, "$n - a file of two lines fails");
    unlike($out, qr/\Q$PASS\E/, "$n - without showing it");

    SKIP: {
        skip "$n - not root", 3 if $> != 0;
        skip "$n - no setpriv", 3 if system('setpriv --help >/dev/null 2>&1');

        ($rc, $out) = nginx_t("password_file=$DIR/right.pass",
                              qw(setpriv --reuid=nobody --regid=nogroup
                                 --clear-groups));
        isnt($rc, 0, "$n - a file nginx may not read fails");
        like($out, qr/cannot open the Redis password file "\Q$DIR\E\/right.pass" \(13: Permission denied\)/,
             "$n - saying so") or diag($out);
        unlike($out, qr/\Q$PASS\E/, "$n - without showing it");
    }
};

run_tests();

__DATA__

=== TEST 1: right password: HITs work
--- log_level: debug
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_AUTH_PORT prefix=t083: timeout=2s password_file=$TEST_NGINX_PASS_DIR/right.pass;
    ai_gateway_cache_ttl 90;
}



=== TEST 2: wrong password: MISS, "AUTH failed", the password never logged
--- log_level: debug
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_AUTH_PORT prefix=t083: timeout=2s password_file=$TEST_NGINX_PASS_DIR/wrong.pass;
    ai_gateway_cache_ttl 90;
}
--- error_log eval
qr/Redis 127\.0\.0\.1:\d+ AUTH failed: WRONGPASS, not used for a while/



=== TEST 3: no password: MISS, "AUTH failed"
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis 127.0.0.1:$TEST_NGINX_AUTH_PORT prefix=t083: timeout=2s;
    ai_gateway_cache_ttl 90;
}
--- error_log
AUTH failed: NOAUTH



=== TEST 4: ACL user, a declared server: HITs work
--- log_level: debug
--- http_config
ai_gateway_redis acl 127.0.0.1:$TEST_NGINX_ACL_PORT user=gw password_file=$TEST_NGINX_PASS_DIR/acl.pass timeout=2s;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis acl prefix=t083:;
    ai_gateway_cache_ttl 90;
}



=== TEST 5: unknown ACL user: MISS, "AUTH failed"
--- http_config
ai_gateway_redis acl 127.0.0.1:$TEST_NGINX_ACL_PORT user=nobody password_file=$TEST_NGINX_PASS_DIR/acl.pass timeout=2s;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis acl prefix=t083:;
    ai_gateway_cache_ttl 90;
}
--- error_log eval
qr/Redis "acl" at 127\.0\.0\.1:\d+ AUTH failed: WRONGPASS/



=== TEST 6: database index: the entry lands in db 5
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis db5 prefix=t083:;
    ai_gateway_cache_ttl 90;
}
--- http_config
ai_gateway_redis db5 127.0.0.1:$TEST_NGINX_AUTH_PORT db=5 password_file=$TEST_NGINX_PASS_DIR/right.pass timeout=2s;



=== TEST 7: database out of range: MISS, "SELECT failed"
--- http_config
ai_gateway_redis db99 127.0.0.1:$TEST_NGINX_AUTH_PORT db=99 password_file=$TEST_NGINX_PASS_DIR/right.pass timeout=2s;
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis db99 prefix=t083:;
    ai_gateway_cache_ttl 90;
}
--- error_log
SELECT failed: ERR



=== TEST 8: one connection for the servers that name one Redis server
--- http_config
ai_gateway_redis shared 127.0.0.1:$TEST_NGINX_OTHER_PORT timeout=2s;
server {
    listen 127.0.0.1:$TEST_NGINX_NODE2_PORT;
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_cache_redis shared prefix=t083:;
        ai_gateway_cache_ttl 90;
    }
}
--- config
location = /ping { return 200 ok; }
location /v1/ {
    ai_gateway gw;
    ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    ai_gateway_cache_redis shared prefix=t083:;
    ai_gateway_cache_ttl 90;
}



=== TEST 9: nginx -t reads the password file, and refuses a bad one
--- config
location = /ping { return 200 ok; }



=== TEST 10: a missing password file
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_cache_redis 127.0.0.1:6379 password_file=$TEST_NGINX_PASS_DIR/missing.pass;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*cannot open the Redis password file ".*\/missing\.pass" \(2: No such file or directory\)/



=== TEST 11: a directory as password file
--- http_config
ai_gateway_redis r 127.0.0.1:6379 password_file=$TEST_NGINX_PASS_DIR/dir.pass;
--- must_die
--- error_log eval
qr/\[emerg\] .*the Redis password file ".*\/dir\.pass" is not a regular file/



=== TEST 12: an empty password file
--- http_config
ai_gateway_redis r 127.0.0.1:6379 password_file=$TEST_NGINX_PASS_DIR/empty.pass;
--- must_die
--- error_log eval
qr/\[emerg\] .*the Redis password file ".*\/empty\.pass" is empty/



=== TEST 13: a password file of two lines (not shown in the message)
--- http_config
ai_gateway_redis r 127.0.0.1:6379 user=gw password_file=$TEST_NGINX_PASS_DIR/twoline.pass;
--- must_die
--- error_log eval
qr/\[emerg\] .*the Redis password file ".*\/twoline\.pass" has more than one line/
--- no_error_log
right-Pass



=== TEST 14: user= without password_file=
--- http_config
ai_gateway_redis r 127.0.0.1:6379 user=gw;
--- must_die
--- error_log eval
qr/\[emerg\] .*Redis "user=" needs "password_file="/



=== TEST 15: a name never declared
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_cache_redis nowhere;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*no "ai_gateway_redis nowhere" is declared, as used in .*nginx\.conf:\d+/



=== TEST 16: server parameters belong to the declaration
--- http_config
ai_gateway_redis r 127.0.0.1:6379;
--- config
location /v1/ {
    ai_gateway gw;
    ai_gateway_cache_redis r db=2;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "db=2": the parameters of a named Redis server are those of its "ai_gateway_redis"/



=== TEST 17: a duplicate declaration
--- http_config
ai_gateway_redis r 127.0.0.1:6379;
ai_gateway_redis r 127.0.0.1:6380;
--- must_die
--- error_log eval
qr/\[emerg\] .*duplicate Redis server "r"/
