# Copyright (C) ngx_ai_gateway contributors

# The official "cloudflare" npm SDK against the gateway's Logs API, with
# only its base URL changed: list (every page), filters, orders, the
# deprecated arguments, get, edit (feedback, score, metadata), the request
# and response payloads, delete, and its errors (404, 400, 401).  The SDK
# comes from npm (t/sdk/package.json, installed by "make test").

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';
use Test::More;
use JSON::PP ();

repeat_each(1);
no_shuffle();

my $have = -d 't/sdk/node_modules/cloudflare';

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    my $n = $block->name;

    return if $dry_run;

    if (!$have) {
        fail("$n - the SDK is installed (cd t/sdk && npm ci)");
        return;
    }

    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";
    my $json = `node t/sdk/logs.mjs $base`;
    my $r = eval { JSON::PP->new->utf8->decode($json) };

    ok($r, "$n - the SDK ran") or diag($json), return;

    ok($r->{clear}, "$n - delete everything");

    my @made = @{ $r->{made} };
    is(scalar(grep { defined && length } @made), 6, "$n - six log ids");

    is_deeply($r->{list_all}, [ reverse @made ],
              "$n - every page, newest first, through the SDK's iterator");

    my $p = $r->{first_page};
    is_deeply($p->{ids}, [ (reverse @made)[0 .. 3] ], "$n - page 1");
    is($p->{info}{total_count}, 6, "$n - result_info.total_count");
    is($p->{info}{per_page}, 4, "$n - result_info.per_page");
    ok($p->{more}, "$n - hasNextPage");
    is($p->{first}{provider}, 'openai', "$n - a log's provider");
    is($p->{first}{model}, 'gpt-4o', "$n - its model");
    ok(JSON::PP::is_bool($p->{first}{success}), "$n - success, a boolean");
    is_deeply($r->{second_page}, [ (reverse @made)[4, 5] ], "$n - page 2");

    is_deeply($r->{filtered}, [ 'anthropic', 'anthropic' ],
              "$n - a filter in the SDK's encoding");
    is_deeply($r->{two_filters}, [ 500 ], "$n - two filters");
    is($r->{bad_filter}{status}, 400, "$n - a bad key: 400");
    like($r->{bad_filter}{message}, qr/7001.*Invalid enum value/,
         "$n - the SDK reads the error");
    is_deeply($r->{ordered},
              [ 'claude-haiku', 'claude-sonnet', 'gpt-4o', 'gpt-4o', 'gpt-4o',
                'gpt-4o-mini' ], "$n - order_by model asc");
    is_deeply($r->{deprecated}, [ 'claude-haiku', 'claude-sonnet' ],
              "$n - provider=, direction=");

    is($r->{get}{id}, $made[0], "$n - get");
    like($r->{get}{request_head}, qr/^POST /, "$n - with its request head");
    ok($r->{get}{request_head_complete}, "$n - complete");

    is($r->{edit}{feedback}, 1, "$n - edit: feedback");
    is($r->{edit}{score}, 80, "$n - edit: score");
    is_deeply($r->{edit}{metadata}, { user => 'sdk', n => 2 },
              "$n - edit: metadata");
    is_deeply($r->{feedback_filter}, [ $made[0] ], "$n - filtered on it");

    is_deeply($r->{request}, { model => 'gpt-4o-mini', n => 4 },
              "$n - the request payload, parsed by the SDK");
    is($r->{response}{path}, '/v1/chat/completions',
       "$n - the response payload");

    is($r->{missing}{status}, 404, "$n - an unknown log: 404");
    is($r->{missing}{name}, 'NotFoundError', "$n - NotFoundError");

    ok($r->{delete}{success}, "$n - delete: success");
    is($r->{delete}{left}, 4, "$n - the two Anthropic logs gone");

    is($r->{bad_token}{status}, 401, "$n - a wrong token: 401");
    is($r->{bad_token}{name}, 'AuthenticationError', "$n - AuthenticationError");
});

run_tests();

__DATA__

=== TEST 1: the cloudflare SDK's aiGateway.logs
--- http_config
ai_gateway_log_zone logs:1m;
--- config
    location /v1/ {
        ai_gateway gw account=acct;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider anthropic http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_logs logs;
    }
    location /client/v4/ {
        ai_gateway_api;
        ai_gateway_api_token_file $TEST_NGINX_HTML_DIR/tokens;
    }
--- user_files
>>> tokens
sdk-token
--- request
GET /v1/acct/gw/openai/models
--- response_body_like: "path":"/v1/models"
--- timeout: 30
--- no_error_log
[alert]
[crit]
