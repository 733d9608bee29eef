//! What the pages load besides themselves — the stylesheet and the script,
//! served from their own routes so that the Content-Security-Policy can forbid
//! inline script — and the login page (the one page served without the login).

use axum::{
    http::header,
    response::{IntoResponse, Response},
};

use super::page::esc;

/// Route of the stylesheet.
pub const CSS_PATH: &str = "/static/batchfan.css";
/// Route of the script.
pub const JS_PATH: &str = "/static/live.js";

/// The pages' stylesheet.
pub const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#fafbfc}
h1{font-size:1.3em;margin:0 0 .8em}h1 a{color:inherit;text-decoration:none}h2{font-size:1.05em;margin:1.4em 0 .5em}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #e3e6ea;padding:.35em .5em;text-align:left;vertical-align:top}
th{font-weight:600;color:#555;font-size:.9em}code,.mono{font-family:ui-monospace,monospace;font-size:.92em}
.state{display:inline-block;padding:.05em .5em;border-radius:3px;font-size:.85em;font-weight:600;color:#fff;background:#8a94a6}
.state-SUCCEEDED{background:#1f9d55}.state-FAILED{background:#d64545}.state-CANCELLED{background:#6b6f7a}.state-SUBMITTED,.state-PLANNED{background:#3b7dd8}.state-PLANNING{background:#a0a8b8}
.grid{display:flex;flex-wrap:wrap;gap:2px;margin:.3em 0 .8em;max-width:100%}
.grid i{display:block;width:12px;height:12px;border-radius:2px;background:#e3e6ea}
.s-SUCCEEDED{background:#1f9d55!important}.s-FAILED{background:#d64545!important}.s-RUNNING{background:#3b7dd8!important}
.s-STARTING{background:#7fb0ef!important}.s-RUNNABLE{background:#e8b931!important}.s-PENDING,.s-SUBMITTED{background:#b7bfcc!important}
.s-NOT_SUBMITTED{background:#fff!important;outline:1px solid #cfd5dd}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 .25em 0 .8em;vertical-align:-1px}
form.run{display:flex;gap:.4em;margin:0}form.run input{font:inherit;padding:.2em .4em;width:14em}
button{font:inherit;padding:.2em 1em;border:0;border-radius:3px;background:#1d2330;color:#fff;cursor:pointer}button[disabled]{background:#b7bfcc;cursor:default}
pre{background:#1d2330;color:#e9edf2;padding:.6em;overflow:auto;max-height:20em;font-size:.85em}
.muted{color:#7a8394}.warn{color:#a86a00}.error{color:#d64545}.counts{color:#555;font-size:.9em}
nav{margin:-.4em 0 1em}nav a{margin-right:1em}
.state-RUNNING,.state-STARTING{background:#3b7dd8}.state-RUNNABLE{background:#c99a12}.state-PENDING{background:#a0a8b8}
.bar{display:inline-flex;gap:1px;vertical-align:middle}.bar i{display:block;width:8px;height:12px;background:#e3e6ea}
.progress{font-size:.85em;color:#555;white-space:nowrap}form.filter{display:flex;gap:1em;align-items:center;margin:0 0 1em}
form.filter select{font:inherit;padding:.15em .3em}table.props{width:auto}table.props th{padding-right:2em}
h3{font-size:.95em;margin:1em 0 .3em}
.state-CANCELLED{background:#6b5b95}.s-CANCELLED{background:#6b5b95!important}.t-CANCELLED{fill:#6b5b95}
.grid i{cursor:pointer}.run-actions{display:flex;gap:.5em;margin:0 0 .5em}.run-actions:empty{display:none}
#timeline{background:#fff;border:1px solid #e3e6ea;max-width:1100px}.tl-label,.tl-axis{font-size:10px;fill:#555}
.t-SUCCEEDED{fill:#1f9d55}.t-FAILED{fill:#d64545}.t-RUNNING{fill:#3b7dd8}.t-STARTING{fill:#7fb0ef}.t-span{fill:#8a94a6}
table.history{width:auto}table.history td,table.history th{padding:.15em .25em;text-align:center}table.history tr th:first-child{text-align:right}
a.h{display:inline-block;width:16px;height:16px;border-radius:2px;background:#e3e6ea}
#full-log{max-height:none}.attempt{border-left:3px solid #e3e6ea;padding-left:.6em;margin:.6em 0}
"#;

/// The pages' script. The live part's refresher re-fetches `#live`'s fragment
/// every `data-every` ms until the page shows a final state; it pauses while
/// the tab is hidden (`visibilitychange`) and fetches at once when it is
/// shown again; after a failed fetch it keeps the last content, says so in
/// `#live-status`, and waits twice as long each time (up to a minute); a 401
/// (the session ended: serve restarted) reloads the page, which then shows how
/// to log in. A click on a grid cell opens that child's page.
pub const LIVE_JS: &str = r#"
(function(){
document.addEventListener('click',function(e){const c=e.target.closest&&e.target.closest('.grid i');if(!c)return;
const st=c.closest('.stage');if(!st||!st.dataset.child)return;location.href=st.dataset.child+[...c.parentNode.children].indexOf(c);});
const live=document.getElementById('live');if(!live)return;const every=+live.dataset.every||2000;
const status=document.createElement('p');status.id='live-status';status.className='muted';live.before(status);
let timer=null,failures=0;
function show(state,text){live.dataset.live=state;status.textContent=text;status.className=state==='error'?'error':'muted';}
function schedule(ms){clearTimeout(timer);timer=setTimeout(tick,ms);}
async function tick(){timer=null;if(document.hidden){show('paused','updates paused while this tab is hidden');return;}
if(live.querySelector('[data-terminal="true"]')){show('done','');return;}
try{const r=await fetch(live.dataset.src,{cache:'no-store',headers:{'Accept':'text/html'}});
if(r.status===401){location.reload();return;}
if(!r.ok){const t=(await r.text()).slice(0,300);throw new Error('HTTP '+r.status+(t?': '+t:''));}
live.innerHTML=await r.text();failures=0;show('ok','');schedule(every);}
catch(e){failures++;const wait=Math.min(every*Math.pow(2,failures),60000);
show('error','cannot refresh ('+e.message+'); retrying in '+Math.round(wait/1000)+' s');schedule(wait);}}
document.addEventListener('visibilitychange',function(){if(document.hidden){clearTimeout(timer);timer=null;show('paused','updates paused while this tab is hidden');}
else if(!timer){show('ok','');schedule(0);}});
show('ok','');schedule(every);})();
"#;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `GET /static/batchfan.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /static/live.js`.
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", LIVE_JS)
}

/// The page of a request without the login: how to log in. It holds no token
/// and no data; `problem` says what was wrong with a token given.
pub fn login_page(problem: Option<&str>) -> String {
    let problem = problem.map_or_else(String::new, |p| format!("<p><b>{}</b></p>", esc(p)));
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>batchfan serve: log in</title></head><body><h1>batchfan serve</h1>{problem}\
         <p>Log in with the URL <code>batchfan serve</code> printed when it started \
         (<code>log in: http://…/login?token=…</code>), also in <code>serve.json</code> \
         (<code>login_url</code>) in its state directory (<code>--state</code>), \
         or paste the token from there:</p>\
         <form method=post action=\"/login\"><input type=password name=token autocomplete=off \
         aria-label=token required> <button type=submit>Log in</button></form></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_says_where_the_url_is_and_shows_the_problem_escaped() {
        let page = login_page(Some("bad <token>"));
        assert!(page.contains("serve.json") && page.contains("/login?token="), "{page}");
        assert!(page.contains("bad &lt;token&gt;"), "{page}");
        assert!(!page.contains("<script"), "{page}");
    }
}
