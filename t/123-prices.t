# Copyright (C) ngx_ai_gateway contributors

# ai_gateway_prices: the module's prices.json, an operator's file that
# replaces and extends it (relative to the configuration prefix), "off",
# and the configurations nginx refuses to start with.

use lib 't/lib';
use AIGW::Test;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;

    return if defined $block->config;

    $block->set_value("config", <<'END');
    location /v1/ {
        ai_gateway gw;
        ai_gateway_provider openai http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        ai_gateway_provider custom-llm http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        access_log logs/access.log costs;
    }
END
});

run_tests();

__DATA__

=== TEST 1: the module's prices.json
--- http_config
    log_format costs '$ai_gateway_provider $ai_gateway_tokens_in $ai_gateway_tokens_out cost=$ai_gateway_cost';
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"gpt-4.1-nano"}
--- more_headers
x-mock: fixture=openai-chat/text.json
--- access_log
openai 16 363 cost=0.0001468
--- no_error_log
[warn]
[error]



=== TEST 2: an operator's file replaces an entry
--- user_files
>>> my-prices.json
{"date":"2026-01-01","unit":"USD per 1M tokens",
 "prices":{"openai":{"gpt-4.1-nano":{"input":1,"output":2}}}}
--- http_config
    ai_gateway_prices ../html/my-prices.json;
    log_format costs '$ai_gateway_provider $ai_gateway_tokens_in $ai_gateway_tokens_out cost=$ai_gateway_cost';
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"gpt-4.1-nano"}
--- more_headers
x-mock: fixture=openai-chat/text.json
--- access_log
openai 16 363 cost=0.000742



=== TEST 3: an operator's file adds a custom provider's model, a later file replaces it
--- user_files
>>> a.json
{"prices":{"custom-llm":{"gpt-4.1-nano":{"input":0.5,"output":0.5}}}}
>>> b.json
{"prices":{"custom-llm":{"gpt-4.1-nano":{"input":1,"output":1}}}}
--- http_config
    ai_gateway_prices ../html/a.json;
    ai_gateway_prices ../html/b.json;
    log_format costs '$ai_gateway_provider $ai_gateway_tokens_in $ai_gateway_tokens_out cost=$ai_gateway_cost';
--- request
POST /v1/acct/gw/custom-llm/chat/completions
{"model":"x"}
--- more_headers
x-mock: fixture=openai-chat/text.json
--- access_log
custom-llm 16 363 cost=0.000379



=== TEST 4: the module's entries stay beside an operator's file
--- user_files
>>> a.json
{"prices":{"custom-llm":{"gpt-4.1-nano":{"input":0.5,"output":0.5}}}}
--- http_config
    ai_gateway_prices ../html/a.json;
    log_format costs '$ai_gateway_provider $ai_gateway_tokens_in $ai_gateway_tokens_out cost=$ai_gateway_cost';
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"x"}
--- more_headers
x-mock: fixture=openai-chat/text.json
--- access_log
openai 16 363 cost=0.0001468



=== TEST 5: "off": without the module's table
--- user_files
>>> mine.json
{"prices":{"openai":{"gpt-4o":{"input":2.5,"output":10}}}}
--- http_config
    ai_gateway_prices off;
    ai_gateway_prices ../html/mine.json;
    log_format costs '$ai_gateway_provider $ai_gateway_tokens_in $ai_gateway_tokens_out cost=$ai_gateway_cost';
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"x"}
--- more_headers
x-mock: fixture=openai-chat/text.json
--- access_log
openai 16 363 cost=-



=== TEST 6: "off", then a file: its entries only
--- user_files
>>> mine.json
{"prices":{"openai":{"gpt-4o":{"input":2.5,"output":10}}}}
--- http_config
    ai_gateway_prices off;
    ai_gateway_prices ../html/mine.json;
    log_format costs '$ai_gateway_provider $ai_gateway_tokens_in $ai_gateway_tokens_out cost=$ai_gateway_cost';
--- request
POST /v1/acct/gw/openai/chat/completions
{"model":"x"}
--- more_headers
x-mock: fixture=openai-chat/text.gpt-4o.json
--- access_log
openai 14 37 cost=0.000405



=== TEST 7: an invalid price file: nginx does not start, the reason said
--- user_files
>>> bad.json
{"prices":{"openai":{"x":{"input":1,"ouput":2}}}}
--- http_config
    ai_gateway_prices ../html/bad.json;
    log_format costs '$ai_gateway_cost';
--- must_die
--- error_log
unknown price "ouput" of "x"



=== TEST 8: a price file that is not there
--- http_config
    ai_gateway_prices ../html/none.json;
    log_format costs '$ai_gateway_cost';
--- must_die
--- error_log eval
qr/open\(\) ".*none\.json" failed/



=== TEST 9: "off" after a file
--- user_files
>>> mine.json
{}
--- http_config
    ai_gateway_prices ../html/mine.json;
    ai_gateway_prices off;
    log_format costs '$ai_gateway_cost';
--- must_die
--- error_log
"off" must come before any price file



=== TEST 10: only at the http level
--- config
    location /v1/ {
        ai_gateway gw;
        ai_gateway_prices /dev/null;
    }
--- must_die
--- error_log
"ai_gateway_prices" directive is not allowed here
