# Copyright (C) ngx_ai_gateway contributors

# The metrics endpoint as Prometheus reads it: "promtool check metrics" on
# its output (label values with quotes, backslashes, bytes outside ASCII
# and control characters included), and a real Prometheus server, started
# by the test on a free port with a temporary configuration and storage,
# scraping the endpoint every second; a PromQL query over its HTTP API
# returns the tokens the mock provider reported.  Debian's "prometheus"
# package (make deps-test) has both; without them the tests are skipped.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use HTTP::Tiny ();
use JSON::PP ();
use File::Temp ();
use POSIX ();
use Time::HiRes qw(sleep time);
use AIGW::Redis qw(redis_free_port);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();
workers(2);

our $HT = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $J = JSON::PP->new->canonical;

# a free port: suites run side by side on one machine
my $PROM_PORT = redis_free_port();

sub have { my $b = shift; return grep { -x "$_/$b" } split /:/, $ENV{PATH} }

sub url { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$_[0]" }

sub gw {
    my ($path, $body, %h) = @_;
    return $HT->request('POST', url($path), {
        headers => { 'content-type' => 'application/json', %h },
        content => $body,
    });
}

sub chat {
    my ($model, %more) = @_;
    return $J->encode({ model => $model,
                        messages => [ { role => 'user', content => 'hi' } ],
                        %more });
}

# wait until the zone has seen n requests
sub wait_requests {
    my $n = shift;
    my $t = time;
    while (time < $t + 5) {
        my $j = eval {
            json_decode($HT->get(url('/metrics?format=json'))->{content})
        };
        my $got = 0;
        $got += $_->{ai_gateway_requests_total} for @{ $j->{series} || [] };
        return if $got >= $n;
        sleep 0.05;
    }
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
                      "\$TEST_NGINX_PROVIDER_UPSTREAMS\n"
                      . "ai_gateway_cache_zone aic:1m;\n"
                      . "ai_gateway_metrics_zone metrics:2m;\n");

    $block->set_value("config", <<'END');
    location = /ping { return 200 ok; }
    location /v1/ {
        ai_gateway gw;
        $TEST_NGINX_TLS_CONFIG
        ai_gateway_cache aic;
        ai_gateway_metrics metrics;
    }
    location = /metrics {
        ai_gateway_metrics_endpoint;
    }
END

    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});

my %scenario;

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $name = $block->name;
    for my $k (sort keys %scenario) {
        if ($name =~ /\Q$k\E/) {
            mock_reset();
            $scenario{$k}->($name);
        }
    }
});

my $C = '/v1/acct/gw/openai/chat/completions';
my $TEXT = 'fixture=openai-chat/text.json';                 # 16 in, 363 out

$scenario{'promtool'} = sub {
    my $n = shift;

    SKIP: {
        skip "$n: promtool is not installed (Debian: apt-get install "
             . "prometheus, or make deps-test)", 3 unless have('promtool');

        my @models = ('gpt-4o-mini', 'a"quoted"\\model', "caf\x{e9}-\x{4e2d}",
                      "new\nline\ttab", 'x' x 300, '');
        gw($C, chat($_), 'x-mock' => $TEXT) for @models;
        gw($C, chat('gpt-4o-mini'), 'x-mock' => 'status=500');
        gw($C, chat('gpt-4o-mini'), 'x-mock' => $TEXT);     # a HIT
        gw('/v1/acct/gw/nope/x', '{}');                     # code 2008
        wait_requests(9);

        my $text = $HT->get(url('/metrics'))->{content};
        my $tmp = File::Temp->new(SUFFIX => '.prom');
        print $tmp $text;
        close $tmp;

        my $out = `promtool check metrics < $tmp 2>&1`;
        is($?, 0, "$n - promtool check metrics passes");
        is($out, '', "$n - with nothing to say") or diag($text);

        like($text,
             qr/model="a\\"quoted\\"\\\\model"/,
             "$n - quotes and backslashes escaped");
    }
};

$scenario{'a real Prometheus'} = sub {
    my $n = shift;

    SKIP: {
        skip "$n: prometheus is not installed (Debian: apt-get install "
             . "prometheus, or make deps-test)", 2 unless have('prometheus');

        gw($C, chat('gpt-4o-mini'), 'x-mock' => $TEXT);
        gw($C, chat('gpt-4o'), 'x-mock' => $TEXT);
        gw($C, chat('gpt-4o', stream => JSON::PP::true),
           'x-mock' => 'fixture=openai-chat/stream-text-usage.sse;'
                     . 'interval=2');                      # 14 in, 30 out
        wait_requests(3);

        my $dir = File::Temp->newdir();
        open my $fh, '>', "$dir/prometheus.yml" or die $!;
        print $fh <<END;
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ai_gateway
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}']
END
        close $fh;

        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            open STDOUT, '>', "$dir/prometheus.log";
            open STDERR, '>&', \*STDOUT;
            { exec 'prometheus', "--config.file=$dir/prometheus.yml",
                   "--storage.tsdb.path=$dir/data",
                   "--web.listen-address=127.0.0.1:$PROM_PORT" };
            POSIX::_exit(127);
        }

        # a query until the scrape has come: up to 30 s
        my $q = 'sum(ai_gateway_output_tokens_total{gateway="gw"})';
        my ($value, $t) = ('', time);
        while (time < $t + 30) {
            my $r = $HT->get("http://127.0.0.1:$PROM_PORT/api/v1/query?"
                             . $HT->www_form_urlencode({ query => $q }));
            my $j = eval { json_decode($r->{content}) };
            if ($j && $j->{status} eq 'success'
                && @{ $j->{data}{result} })
            {
                $value = $j->{data}{result}[0]{value}[1];
                last;
            }
            sleep 0.5;
        }

        kill 'TERM', $pid;
        waitpid($pid, 0);

        is($value, 363 + 363 + 30,
           "$n - PromQL: the tokens out the mock reported");

        my $r = $HT->get(url('/metrics'));
        like($r->{content}, qr/^ai_gateway_input_tokens_total\{gateway="gw",provider="openai",model="gpt-4o",client="",status="2xx",cached="false"\} 30$/m,
             "$n - the endpoint agrees");
    }
};

run_tests();

__DATA__

=== TEST 1: promtool

=== TEST 2: a real Prometheus
