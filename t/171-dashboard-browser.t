# Copyright (C) ngx_ai_gateway contributors

# The dashboard in a real browser (issue #13, item 4): headless Chromium,
# driven over the DevTools protocol by t/dashboard/browser.mjs, against a
# real nginx serving the page (ai_gateway_dashboard), the management API
# behind a token, and a log store filled through the gateway from the mock
# provider.  The page must load, show the numbers the analytics API
# returns, list and filter logs a page at a time, show a log's payloads,
# record thumbs-up feedback (read back here through the Logs API), render
# a model name made of HTML as text, fit a phone's width, and log no
# console error or CSP violation.  Screenshots at desktop and phone widths
# are written to t/servroot-dashboard/ (or $AIGW_RESULTS).
#
# Debian's "chromium" package is needed (util/deps.sh test installs it);
# without it the file is skipped, saying so.

use lib 't/lib';
use Test::More;

my $CHROMIUM = $ENV{CHROMIUM} // 'chromium';

BEGIN {
    my $c = $ENV{CHROMIUM} // 'chromium';
    unless (grep { -x "$_/$c" } split /:/, $ENV{PATH} or -x $c) {
        plan skip_all => "no Chromium (\"$c\"): apt-get install chromium,"
                         . " or set CHROMIUM to its path";
    }
}

use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use HTTP::Tiny ();
use JSON::PP ();
use Cwd ();
use Time::HiRes qw(time sleep);

repeat_each(1);
no_shuffle();
no_long_string();
master_on();

our $HT = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
our $J = JSON::PP->new->utf8->canonical;
our $TOKEN = 'dash-token-1';
our $RESULTS = $ENV{AIGW_RESULTS} // Cwd::abs_path('t') . '/servroot-dashboard';

sub base { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}" }

sub gw {
    my ($path, $body, %h) = @_;
    return $HT->request('POST', base() . $path, {
        headers => { 'content-type' => 'application/json', %h },
        content => $J->encode($body),
    });
}

sub api {
    my ($path) = @_;
    my $r = $HT->request('GET', base()
                         . "/client/v4/accounts/acct/ai-gateway/$path",
                         { headers => { authorization => "Bearer $TOKEN" } });
    return eval { $J->decode($r->{content}) };
}

sub chat {
    my ($model, %more) = @_;
    return { model => $model,
             messages => [ { role => 'user', content => 'hello dash' } ],
             %more };
}

sub commas { my $n = reverse shift; $n =~ s/(\d{3})(?=\d)/$1,/g; scalar reverse $n }

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<END);
ai_gateway_log_zone logs:16m;
ai_gateway_analytics_zone an:4m bucket=1m keep=1d;
END

    $block->set_value("config", <<END);
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:\$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
        ai_gateway_analytics an;
    }
    location /client/v4/ {
        ai_gateway_api;
        ai_gateway_api_token_file \$TEST_NGINX_HTML_DIR/tokens;
    }
    location /dashboard/ {
        ai_gateway_dashboard api=/client/v4 account=acct gateway=gw;
    }
    location = /ping { return 200 ok; }
END

    $block->set_value("user_files", ">>> tokens\n$TOKEN\n");
    $block->set_value("request", "GET /ping");
    $block->set_value("response_body", "ok");
    $block->set_value("no_error_log", "[alert]\n[crit]\n[emerg]\n");
});

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    mock_reset();
    browse($block->name);
});

sub browse {
    my $n = shift;
    my $V = '/v1/acct/gw';

    # a store of many pages: 300 OpenAI, 3 Anthropic, 2 errors (one with a
    # model named with HTML)
    my $N = 300;
    for my $i (1 .. $N) {
        gw("$V/openai/chat/completions", chat('gpt-4.1-nano', n => $i),
           'x-mock' => 'fixture=openai-chat/text.json');
    }
    for my $i (1 .. 3) {
        gw("$V/anthropic/v1/messages", chat('claude-sonnet-4-5', n => $i),
           'x-mock' => 'fixture=anthropic/text.json');
    }
    gw("$V/openai/chat/completions", chat('gpt-4o'),
       'x-mock' => 'status=500');
    gw("$V/openai/chat/completions", chat('<img src=x onerror=alert(1)>'),
       'x-mock' => 'status=400');
    sleep 0.3;

    my $a = api('gateways/gw/analytics?group_by=model');
    ok($a && $a->{success}, "$n - the analytics API answers");
    my $t = $a->{result}{totals};
    my $total = $N + 5;
    is($t->{requests}, $total, "$n - $total requests");

    my $cmd = join ' ', map { quotemeta }
        'node', 't/dashboard/browser.mjs', base() . '/dashboard/',
        $TOKEN, $RESULTS;
    my $json = `CHROMIUM=\Q$CHROMIUM\E $cmd`;
    my $out = eval { $J->decode($json) };
    ok($out, "$n - the browser ran") or do {
        diag("browser: $json");
        return;
    };

    # the numbers the API returns, as the page shows them
    is($out->{cards}{requests}, commas($t->{requests}),
       "$n - requests as the API's");
    is($out->{cards}{tokens}, commas($t->{tokens_in}) . ' / '
                              . commas($t->{tokens_out}),
       "$n - tokens as the API's");
    is($out->{cards}{errors}, $t->{errors}, "$n - errors as the API's");
    is($out->{cards}{cached}, '0%', "$n - cached share");
    like($out->{cards}{cost}, qr/^\$0\.0\d+$/, "$n - a cost");
    my %rows = map { ("$_->[0]|$_->[1]" => $_) } @{ $out->{breakdown} };
    is($rows{'openai|gpt-4.1-nano'}[2], $N, "$n - breakdown: gpt-4.1-nano");
    is($rows{'anthropic|claude-sonnet-4-5'}[2], 3, "$n - breakdown: claude");
    ok(exists $rows{'openai|<img src=x onerror=alert(1)>'},
       "$n - an HTML model name shown as text");
    is($out->{images}, 0, "$n - and never made an element");
    ok($out->{bars} > 0, "$n - the requests chart has bars");
    is($out->{token_in_storage}, $TOKEN, "$n - the token in sessionStorage");
    SKIP: {
        # nginx under valgrind is many times slower: no timing then
        skip "$n - no timing under valgrind", 2
            if $ENV{TEST_NGINX_USE_VALGRIND};
        ok($out->{load_ms} < 1000, "$n - the page loads in under a second "
                                   . "($out->{load_ms} ms)");
        ok($out->{analytics_ms} < 1000, "$n - the analytics in under a "
                                        . "second ($out->{analytics_ms} ms)");
    }

    # the logs, a page of 20; filtered
    is($out->{logs_rows}, 20, "$n - one page of logs");
    is($out->{logs_page}, sprintf('Page 1 of %d (%s logs)',
                                  ($total + 19) / 20, commas($total)),
       "$n - pages");
    is($out->{filtered_page}, 'Page 1 of 1 (3 logs)', "$n - filtered");
    is_deeply($out->{filtered_providers}, [ ('anthropic') x 3 ],
              "$n - only anthropic");

    # a log's payloads and feedback, read back through the Logs API
    like($out->{detail_request}, qr/hello dash/, "$n - its request");
    like($out->{detail_response}, qr/\S/, "$n - its response");
    is($out->{feedback_text}, 'Thumbs up', "$n - the page says thumbs up");
    is($out->{feedback_cell}, 'up', "$n - the row too");
    my $log = api("gateways/gw/logs/$out->{detail_id}");
    is($log->{result}{feedback}, 1, "$n - the store has feedback 1");
    is($log->{result}{provider}, 'anthropic', "$n - on the log opened");

    # a phone
    ok($out->{phone_width} <= 390, "$n - no page wider than the phone "
                                   . "($out->{phone_width})");
    is($out->{phone_cards_columns}, 2, "$n - two cards a row on a phone");

    is_deeply($out->{console_errors}, [], "$n - no console error, no CSP "
                                          . "violation");
    for my $f (@{ $out->{screenshots} }) {
        ok(-s $f > 1000, "$n - screenshot $f");
    }
}

run_tests();

__DATA__

=== TEST 1: the dashboard in Chromium
