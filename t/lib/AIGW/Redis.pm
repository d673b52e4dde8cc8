# Copyright (C) ngx_ai_gateway contributors

package AIGW::Redis;

# A real redis-server for the tests, and a raw client: RESP written and read
# by hand over a socket, so that a test can put any bytes in an entry and
# see exactly what the gateway stored.
#
#   my $pid = redis_start($port, '--requirepass', 'secret');
#   redis_cmd({ port => $port, auth => ['secret'], db => 3 }, 'GET', $k);
#   redis_stop($pid);
#
# redis_cmd() returns the reply: a string, undef for nil, a number, an array
# ref, or { error => 'message' }; it dies when the connection fails.

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(sleep);

our @EXPORT = qw(redis_free_port redis_start redis_stop redis_cmd);

sub redis_free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "listen: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub redis_start {
    my ($port, @args) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        { exec 'redis-server', '--port', $port, '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'no', '--daemonize', 'no',
               @args };
        POSIX::_exit(127);
    }
    for (1 .. 50) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        sleep 0.1;
    }
    return $pid;
}

sub redis_stop {
    my $pid = shift;
    return unless $pid;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}

sub _read_line {
    my $s = shift;
    my $line = '';
    while ($line !~ /\r\n\z/) {
        my $n = sysread($s, my $c, 1);
        die "redis: connection closed\n" unless $n;
        $line .= $c;
    }
    return substr($line, 0, -2);
}

sub _read_reply {
    my $s = shift;
    my $line = _read_line($s);
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $t eq '+';
    return { error => $rest } if $t eq '-';
    return $rest + 0 if $t eq ':';
    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = sysread($s, $buf, $rest + 2 - length($buf), length $buf);
            die "redis: connection closed\n" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { _read_reply($s) } 1 .. $rest ];
    }
    die "redis: unexpected reply '$line'\n";
}

sub _send {
    my ($s, @args) = @_;
    my $req = '*' . scalar(@args) . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    syswrite($s, $req) == length($req) or die "redis: write: $!\n";
    return _read_reply($s);
}

sub redis_cmd {
    my ($opt, @args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$opt->{port}",
                                  Timeout => 5)
        or die "redis: connect to $opt->{port}: $!\n";
    binmode $s;
    if ($opt->{auth}) {
        my $r = _send($s, 'AUTH', @{ $opt->{auth} });
        die "redis: AUTH: $r->{error}\n" if ref $r eq 'HASH';
    }
    if ($opt->{db}) {
        my $r = _send($s, 'SELECT', $opt->{db});
        die "redis: SELECT: $r->{error}\n" if ref $r eq 'HASH';
    }
    my $r = _send($s, @args);
    close $s;
    return $r;
}

1;
