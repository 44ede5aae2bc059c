//! Synthetic Claude Code session transcripts for `glassbox demo`.
//!
//! SPEC §1 asks the demo for "a month of transcripts ending today" for its
//! users. The realistic generator of `shared/corpus/gen_sessions.py` is
//! Python, which the binary cannot depend on, so this module ports its
//! realistic profile to Rust: the same line shapes (one line per content
//! block with `message.id`, `requestId` and the full `usage` repeated;
//! tool_use / tool_result pairs with `toolUseResult`; thinking and text;
//! inline `isSidechain` subagent lines after `Task` / `Agent` dispatches;
//! `mcp__…` and `Skill` calls; slash commands; `summary`,
//! `file-history-snapshot`, `system`, `progress` and `queue-operation` lines;
//! `<synthetic>` API-error messages) and the same failure rates, so the
//! demo's Sessions pages and findings have something to show.
//!
//! Design choices:
//! * **Deterministic.** A self-written SplitMix64 drives every choice (not
//!   `rand`, whose streams may change between versions), every session has
//!   its own stream derived from the seed and the user's name, and the two
//!   transcendental functions used (`exp`, `ln`) are computed with basic
//!   IEEE operations only, so the bytes do not depend on the platform's libm.
//! * **Inside the window.** A session is simulated from a planned start;
//!   if its last line would fall after `end`, it is simulated again from an
//!   earlier start. Nothing in a session's content depends on its start
//!   time (timestamps have a fixed width, durations are relative), so the
//!   second run is the same session shifted in time.
//! * **Every kind of finding.** Rates are per call and per session as in
//!   the Python generator; on top of that, one session of the corpus is
//!   forced to carry each rare event (loop, denial, rejection, subagent,
//!   MCP, Skill, slash command, API error, idle gap, late error, abrupt end)
//!   so that even a small demo shows all of them.
//! * **Fast.** Text comes from fixed pools of code and log lines built once
//!   per call; each file is built in memory and written in one go.

use std::borrow::Cow;
use std::io::{self, Write as _};
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoCorpusSpec {
    /// Directory names, one per user (e.g. `alice.novak`); the part before
    /// the first dot becomes the home directory in the sessions' `cwd`.
    pub users: Vec<String>,
    /// Sessions start within the `days` days before `end` (at least 1).
    pub days: u32,
    /// No timestamp is later than this.
    pub end: DateTime<Utc>,
    /// Sessions per user, drawn uniformly from `min..=max`.
    pub sessions_per_user: (u32, u32),
    pub seed: u64,
}

impl DemoCorpusSpec {
    /// The demo's defaults: 30 days ending at `end`, 8–20 sessions per user.
    pub fn demo(users: Vec<String>, end: DateTime<Utc>) -> Self {
        DemoCorpusSpec {
            users,
            days: 30,
            end,
            sessions_per_user: (8, 20),
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoCorpusStats {
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
}

/// Writes `root/<user>/<session-id>.jsonl` for every planned session and
/// returns the totals. Existing files of the same name are overwritten; the
/// caller decides whether `root` may be used at all.
pub fn generate(root: &Path, spec: &DemoCorpusSpec) -> io::Result<DemoCorpusStats> {
    for name in &spec.users {
        // The names become path components; refuse anything that could
        // escape `root` or collapse into it.
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid user directory name {name:?}"),
            ));
        }
    }
    let pools = TextPools::new();
    let corpus = plan_corpus(spec);
    let mut stats = DemoCorpusStats::default();
    for plan in &corpus.sessions {
        let user = &corpus.users[plan.user];
        let data = build_in_window(&corpus, plan, &pools);
        let dir = root.join(&user.dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{}.jsonl", plan.session_id)), &data.buf)?;
        stats.files += 1;
        stats.bytes += data.buf.len() as u64;
        stats.lines += data.lines;
    }
    Ok(stats)
}

// ---------------------------------------------------------------------------
// Format constants (shared with gen_sessions.py and the parser's definitions)
// ---------------------------------------------------------------------------

const REJECTION_TEXT: &str =
    "The user doesn't want to proceed with this tool use. The tool use was rejected \
(eg. if it was a file edit, the new_string was NOT written to the file). \
STOP what you are doing and wait for the user to tell you how to proceed.";
const REJECTION_RESULT: &str = "User rejected tool use";
const DENIAL_MARK: &str = "but you haven't granted it yet";
const INTERRUPTED_FOR_TOOL: &str = "[Request interrupted by user for tool use]";
const INTERRUPTED: &str = "[Request interrupted by user]";
const SYNTHETIC_MODEL: &str = "<synthetic>";
/// Identical consecutive main-thread calls that make a loop finding.
const LOOP_MIN_RUN: i64 = 3;

// Behaviour rates, per tool call, per turn or per session (gen_sessions.py).
const P_ERROR: f64 = 0.03;
/// Of single permission-gated calls (about a third of all calls): ~1% overall.
const P_REJECT: f64 = 0.03;
/// Of single permission-gated calls: ~0.5% overall.
const P_DENY: f64 = 0.015;
const P_ABRUPT: f64 = 0.05;
const P_SUBAGENT_SESSION: f64 = 0.10;
const P_LOOP_SESSION: f64 = 0.04;
const P_SUBAGENT_STEP: f64 = 0.06;
/// Per step, on top of the 4% of sessions with a loop. gen_sessions.py uses
/// 0.0015, which gives ~9% of the demo's sessions a loop; this keeps the
/// share near 5%.
const P_LOOP_STEP: f64 = 0.0004;
const P_MULTI_TOOL: f64 = 0.15;
const P_SLASH: f64 = 0.04;
const P_LOCAL_COMMAND: f64 = 0.02;
const P_IMAGE: f64 = 0.02;
const P_IDLE_GAP: f64 = 0.05;
const P_INTERRUPT: f64 = 0.01;
const P_QUEUE: f64 = 0.02;
const P_API_ERROR: f64 = 0.004;
/// exp(-1/4): steps per turn are 1 + ⌊Exp(mean 4)⌋, drawn as a geometric
/// count so no logarithm is needed.
const P_ANOTHER_STEP: f64 = 0.778_800_783_071_404_9;
const COMPACT_AT_TOKENS: i64 = 160_000;

/// (cumulative probability, bytes) anchors of a log-linear quantile curve:
/// a heavy user's file sizes (median ~100 KB, p90 ~650 KB).
const SIZE_ANCHORS: [(f64, f64); 10] = [
    (0.0, 3_000.0),
    (0.10, 20_000.0),
    (0.25, 45_000.0),
    (0.50, 95_000.0),
    (0.75, 250_000.0),
    (0.90, 640_000.0),
    (0.95, 1_400_000.0),
    (0.99, 4_800_000.0),
    (0.997, 15_000_000.0),
    (1.0, 40_000_000.0),
];
/// The demo caps a file at 2 MB: the mean file is then ~270 KB, so 11 users
/// × 8–20 sessions make ~40 MB, generated and ingested in seconds.
const SIZE_CAP: f64 = 2_000_000.0;

const OPUS: &str = "claude-opus-4-7";
const SONNET: &str = "claude-sonnet-4-5";
const HAIKU: &str = "claude-haiku-4-5";
/// A user's main model. gen_sessions.py gives haiku 5%; the demo has only
/// ~11 users, so haiku gets 12% to show up as a main model in most seeds
/// (it also runs the `Explore` subagents).
const MAIN_MODELS: [(&str, f64); 3] = [(OPUS, 0.50), (SONNET, 0.38), (HAIKU, 0.12)];

// ---------------------------------------------------------------------------
// Vocabulary and templates (ported from gen_sessions.py)
// ---------------------------------------------------------------------------

const PROJECT_NAMES: &[&str] = &[
    "billing-service",
    "web-dashboard",
    "data-pipeline",
    "auth-gateway",
    "mobile-api",
    "infra-tools",
    "search-indexer",
    "notification-hub",
    "reporting",
    "ml-features",
    "checkout-ui",
    "inventory-sync",
    "cli",
    "admin-portal",
];
const NOUNS: &[&str] = &[
    "invoice",
    "user",
    "session",
    "payment",
    "config",
    "cache",
    "token",
    "order",
    "report",
    "queue",
    "worker",
    "schema",
    "router",
    "parser",
    "client",
    "account",
    "webhook",
    "metric",
    "export",
    "upload",
    "profile",
    "search",
    "widget",
    "ledger",
    "tenant",
    "job",
    "event",
    "audit",
    "billing",
    "dashboard",
];
const VERBS: &[&str] = &[
    "load",
    "parse",
    "fetch",
    "build",
    "render",
    "validate",
    "sync",
    "update",
    "create",
    "delete",
    "resolve",
    "compute",
    "format",
    "handle",
    "retry",
    "flush",
    "merge",
    "normalize",
    "serialize",
    "refresh",
];
const ADJECTIVES: &[&str] = &[
    "pending", "stale", "cached", "default", "active", "legacy", "batch", "async", "remote",
    "local", "partial",
];
const SUFFIXES: &[&str] = &[
    "Service",
    "Client",
    "Manager",
    "Handler",
    "Repository",
    "Controller",
    "Store",
    "Factory",
    "Builder",
];
const MODULES: &[&str] = &[
    "core", "utils", "api", "models", "services", "handlers", "storage", "common", "internal",
];

const SUBAGENT_TYPES: [(&str, Option<&str>); 4] = [
    ("Explore", Some(HAIKU)),
    ("general-purpose", None),
    ("Plan", None),
    ("code-reviewer", Some(SONNET)),
];
const SKILLS: &[&str] = &[
    "pdf",
    "xlsx",
    "docx",
    "pptx",
    "frontend-design",
    "webapp-testing",
];
const MCP_SERVERS: &[&str] = &[
    "github",
    "linear",
    "sentry",
    "postgres",
    "playwright",
    "slack",
];
const PROMPT_COMMANDS: &[&str] = &[
    "/review",
    "/commit",
    "/pr-comments",
    "/security-review",
    "/init",
    "/fix-issue",
];
const LOCAL_COMMANDS: &[&str] = &["/model", "/cost", "/context", "/mcp", "/compact"];

fn mcp_tools(server: &str) -> &'static [&'static str] {
    match server {
        "github" => &[
            "create_issue",
            "get_pull_request",
            "list_pull_requests",
            "search_code",
        ],
        "linear" => &["list_issues", "get_issue", "update_issue"],
        "sentry" => &["get_issue_details", "search_issues"],
        "postgres" => &["query"],
        "playwright" => &["browser_navigate", "browser_snapshot", "browser_click"],
        _ => &["post_message", "list_channels"],
    }
}

fn local_output(name: &str) -> &'static str {
    match name {
        "/model" => "Set model to \u{1b}[1m{model}\u{1b}[22m",
        "/cost" => "Total cost: ${n}.{m}\nTotal duration (API): {m}m {n}s\nTotal code changes: {n} lines added",
        "/context" => "\u{1b}[1mContext Usage\u{1b}[22m\n\u{26c1} \u{26c1} \u{26c0} \u{26f6} \u{26f6}  {n}k/200k tokens",
        "/mcp" => "MCP Server Status\n\u{2022} github: \u{2714} connected\n\u{2022} linear: \u{2714} connected",
        _ => "Compacted (ctrl+o to see full summary)",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    TypeScript,
    Go,
}

const LANGS: [Lang; 3] = [Lang::Python, Lang::TypeScript, Lang::Go];

impl Lang {
    fn index(self) -> usize {
        self as usize
    }

    fn ext(self) -> &'static str {
        match self {
            Lang::Python => ".py",
            Lang::TypeScript => ".ts",
            Lang::Go => ".go",
        }
    }

    fn file_shapes(self) -> &'static [&'static str] {
        match self {
            Lang::Python => &[
                "src/{pkg}/{noun}.py",
                "src/{pkg}/{mod}/{noun}.py",
                "tests/test_{noun}.py",
            ],
            Lang::TypeScript => &[
                "src/{mod}/{Cls}.ts",
                "src/components/{Noun}View.tsx",
                "src/{mod}/{Cls}.test.ts",
            ],
            Lang::Go => &[
                "internal/{noun}/{noun}.go",
                "internal/{noun}/{noun}_test.go",
                "cmd/{noun}/main.go",
            ],
        }
    }

    fn code_templates(self) -> &'static [&'static str] {
        match self {
            Lang::Python => &[
                "import {mod}",
                "from {pkg}.{mod} import {Cls}",
                "",
                "",
                "class {Cls}({Base}):",
                "    \"\"\"{sentence}\"\"\"",
                "    def __init__(self, {arg}: {Type}, {arg2}: {Type} | None = None) -> None:",
                "        self._{arg} = {arg}",
                "    def {snake}(self, {arg}: {Type}) -> {Type}:",
                "def {snake}({arg}, {arg2}=None):",
                "    if {arg} is None:",
                "        return {lit}",
                "    {var} = {snake}({arg}, {arg2})",
                "    for {var} in self._{arg}:",
                "        {var2}.append({var})",
                "    logger.debug(\"{snake}: %s\", {var})",
                "        raise {Cls}Error(\"cannot {verb} {noun}\")",
                "    return {var}",
                "# TODO: {sentence}",
                "@pytest.mark.parametrize(\"{arg}\", [{lit}, {lit2}])",
                "def test_{snake}({arg}):",
                "    assert {snake}({arg}) == {lit}",
                "    with pytest.raises({Cls}Error):",
                "        {var} = await self._{noun}_client.{snake}({arg}, timeout={n})",
            ],
            Lang::TypeScript => &[
                "import { {Cls} } from '../{mod}/{Cls}';",
                "import {camel} from './{camel}';",
                "",
                "export interface {Cls}Props {",
                "  {arg}: {TsType};",
                "  {arg2}?: {TsType};",
                "}",
                "export function {camel}({arg}: {TsType}): {TsType} {",
                "  const {var} = await {camel}({arg});",
                "  if (!{var}) {",
                "    return {tslit};",
                "  }",
                "  return {var}.map(({arg2}) => {arg2}.{arg});",
                "export const {Cls} = ({ {arg}, {arg2} }: {Cls}Props) => {",
                "  const [{arg}, set{Noun}] = useState<{TsType}>({tslit});",
                "  useEffect(() => {",
                "  }, [{arg}]);",
                "  throw new Error(`failed to {verb} {noun}: ${{arg}}`);",
                "describe('{Cls}', () => {",
                "  it('{desc}', async () => {",
                "    expect({camel}({tslit})).toEqual({tslit});",
                "  });",
                "});",
                "// {sentence}",
            ],
            Lang::Go => &[
                "package {mod}",
                "import (",
                "\t\"context\"",
                "\t\"fmt\"",
                ")",
                "",
                "type {Cls} struct {",
                "\t{Noun} {GoType}",
                "\tmu sync.Mutex",
                "}",
                "func (s *{Cls}) {Verb}{Noun}(ctx context.Context, {arg} {GoType}) ({GoType}, error) {",
                "\tif err != nil {",
                "\t\treturn nil, fmt.Errorf(\"{verb} {noun}: %w\", err)",
                "\t}",
                "\tfor _, {var} := range {arg} {",
                "\t{var}, err := s.{camel}(ctx, {arg})",
                "\treturn {var}, nil",
                "func Test{Cls}(t *testing.T) {",
                "\tt.Run(\"{desc}\", func(t *testing.T) {",
                "// {Cls} {sentence}",
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogKind {
    Pytest,
    Jest,
    Gotest,
    Build,
    Git,
    Lint,
}

const LOG_KINDS: [LogKind; 6] = [
    LogKind::Pytest,
    LogKind::Jest,
    LogKind::Gotest,
    LogKind::Build,
    LogKind::Git,
    LogKind::Lint,
];

impl LogKind {
    fn templates(self) -> &'static [&'static str] {
        match self {
            LogKind::Pytest => &[
                "tests/test_{noun}.py::test_{snake} PASSED{pad}[{pct}%]",
                "tests/test_{noun}.py::test_{snake} PASSED{pad}[{pct}%]",
                "tests/test_{noun}.py::test_{snake} FAILED{pad}[{pct}%]",
                "E       AssertionError: assert {n} == {m}",
                "E        +  where {n} = {snake}({lit})",
                "______________________ test_{snake} ______________________",
                "{n} passed, {m} warnings in {secs}s",
                "FAILED tests/test_{noun}.py::test_{snake} - {Cls}Error: cannot {verb} {noun}",
            ],
            LogKind::Jest => &[
                " PASS  src/{mod}/{Cls}.test.ts",
                " FAIL  src/{mod}/{Cls}.test.ts",
                "  \u{2713} {desc} ({n} ms)",
                "  \u{2713} {desc} ({n} ms)",
                "  \u{2715} {desc} ({n} ms)",
                "    expect(received).toEqual(expected) // deep equality",
                "    - Expected  - {n}",
                "    + Received  + {m}",
                "      at Object.<anonymous> (src/{mod}/{Cls}.test.ts:{n}:{m})",
                "Tests:       {n} passed, {m} total",
            ],
            LogKind::Gotest => &[
                "=== RUN   Test{Cls}",
                "--- PASS: Test{Cls} ({secs}s)",
                "--- PASS: Test{Cls} ({secs}s)",
                "--- FAIL: Test{Cls}/{snake} ({secs}s)",
                "    {noun}_test.go:{n}: got {n}, want {m}",
                "ok  \tgithub.com/acme/{mod}/internal/{noun}\t{secs}s",
                "FAIL\tgithub.com/acme/{mod}/internal/{noun}\t{secs}s",
            ],
            LogKind::Build => &[
                "[{n}/{m}] Compiling src/{mod}/{Cls}.ts",
                "src/{mod}/{camel}.ts({n},{m}): error TS2345: Argument of type 'string' is not assignable to parameter of type '{Cls}'.",
                "vite v5.4.{n} building for production...",
                "\u{2713} {n} modules transformed.",
                "dist/assets/index-{hash}.js   {n}.{m} kB \u{2502} gzip: {m}.{n} kB",
                "warning: unused variable: `{arg}`",
                "   --> src/{noun}.rs:{n}:{m}",
                "  \u{279c}  Local:   http://localhost:{port}/",
            ],
            LogKind::Git => &[
                " M src/{mod}/{camel}.ts",
                "?? tests/test_{noun}.py",
                " src/{mod}/{noun}.py | {n} {plusminus}",
                "{hash} {commit}",
                "diff --git a/src/{mod}/{noun}.py b/src/{mod}/{noun}.py",
                "@@ -{n},{m} +{n},{m} @@ def {snake}",
                "-    return {lit}",
                "+    return {var}",
            ],
            LogKind::Lint => &[
                "src/{mod}/{noun}.py:{n}:{m}: E501 Line too long ({n} > 88)",
                "src/{mod}/{noun}.py:{n}:{m}: F401 [*] `{mod}` imported but unused",
                "  {n}:{m}  warning  '{arg}' is assigned a value but never used  @typescript-eslint/no-unused-vars",
                "Found {n} errors.",
            ],
        }
    }

    /// Test runs and builds take a while; the rest is quick.
    fn slow(self) -> bool {
        matches!(
            self,
            LogKind::Pytest | LogKind::Jest | LogKind::Gotest | LogKind::Build
        )
    }
}

/// What a Bash command prints: a log of some kind, or a directory listing.
#[derive(Debug, Clone, Copy)]
enum BashOut {
    Log(LogKind),
    Ls,
}

type BashCommand = (&'static str, &'static str, BashOut);

fn bash_commands(lang: Lang) -> &'static [BashCommand] {
    use BashOut::Log;
    match lang {
        Lang::Python => &[
            ("pytest -q", "Run the test suite", Log(LogKind::Pytest)),
            (
                "pytest tests/test_{noun}.py -x -q",
                "Run the {noun} tests",
                Log(LogKind::Pytest),
            ),
            ("ruff check .", "Lint with ruff", Log(LogKind::Lint)),
            ("mypy src", "Type-check the package", Log(LogKind::Lint)),
        ],
        Lang::TypeScript => &[
            ("npm test", "Run the tests", Log(LogKind::Jest)),
            (
                "npx vitest run src/{mod}",
                "Run the {mod} tests",
                Log(LogKind::Jest),
            ),
            ("npx tsc --noEmit", "Type-check", Log(LogKind::Build)),
            ("npm run build", "Build the app", Log(LogKind::Build)),
            ("npm run lint", "Lint", Log(LogKind::Lint)),
        ],
        Lang::Go => &[
            ("go test ./...", "Run all tests", Log(LogKind::Gotest)),
            (
                "go test ./internal/{noun}/... -run Test{Cls}",
                "Run the {Cls} tests",
                Log(LogKind::Gotest),
            ),
            ("go build ./...", "Build everything", Log(LogKind::Build)),
            ("go vet ./...", "Vet the code", Log(LogKind::Lint)),
        ],
    }
}

const BASH_ANY: &[BashCommand] = &[
    (
        "git status",
        "Show working tree status",
        BashOut::Log(LogKind::Git),
    ),
    (
        "git diff --stat",
        "Summarize changes",
        BashOut::Log(LogKind::Git),
    ),
    (
        "git log --oneline -15",
        "Show recent commits",
        BashOut::Log(LogKind::Git),
    ),
    (
        "git diff src/{mod}",
        "Show the {mod} diff",
        BashOut::Log(LogKind::Git),
    ),
    ("ls -la src/{mod}", "List the {mod} directory", BashOut::Ls),
];

const WEB_URLS: &[&str] = &[
    "https://docs.python.org/3/library/{mod}.html",
    "https://react.dev/reference/react/use{Noun}",
    "https://pkg.go.dev/github.com/acme/{noun}",
    "https://github.com/acme/{noun}/issues/{n}",
];

const PROMPTS_EN: &[&str] = &[
    "Can you fix the failing test in {file}?",
    "The {noun} endpoint returns a 500 when the {noun2} is {adj}. Find out why and fix it.",
    "Add {adj} {noun} support to {file}. Keep the existing behaviour for {noun2}s.",
    "Refactor {file} so that the {Cls} is injected instead of imported.",
    "Why is `{ident}` so slow? Profile it and suggest a fix.",
    "Write tests for {file}.",
    "Update the README with the new {noun} options.",
    "Run the test suite and fix whatever is broken.",
    "Review my changes on this branch before I open a PR.",
    "Rename `{ident}` to `{ident2}` everywhere.",
    "`{ident}` is undefined at runtime in {file} \u{2014} what's going on?",
    "ok, looks good. commit it",
    "yes go ahead",
    "no, keep the old signature and add an overload instead",
    "continue",
    "Can you also handle the case where the {noun} list is empty?",
];
/// Non-English prompts, per locale (a user's locale picks the row).
const PROMPTS_INTL: [&[&str]; 7] = [
    &[
        "Kannst du den fehlschlagenden Test in {file} reparieren? 🙏",
        "Warum schlägt `{ident}` fehl, wenn der {noun} leer ist?",
    ],
    &[
        "¿Por qué falla `{ident}` cuando el {noun} está vacío? Arréglalo por favor.",
        "Añade pruebas para {file} 🚀",
    ],
    &[
        "{file} のテストが失敗しています。原因を調べて修正してください。",
        "`{ident}` をリファクタリングして 🙏",
    ],
    &[
        "请帮我重构 {file}，把 `{ident}` 拆成更小的函数。",
        "为什么 `{ident}` 返回空值？🤔",
    ],
    &[
        "Peux-tu ajouter des tests pour {file} ? Merci ✨",
        "Pourquoi `{ident}` échoue-t-il quand le {noun} est vide ?",
    ],
    &[
        "Pode revisar as mudanças nesta branch antes do PR? 🚀",
        "Corrija o teste que falha em {file}, por favor.",
    ],
    &[
        "Исправь, пожалуйста, ошибку в {file}: `{ident}` возвращает None.",
        "Напиши тесты для {file} 🙏",
    ],
];
const STEP_TEXTS: &[&str] = &[
    "Let me look at `{file}` first.",
    "I'll run the tests to see the current state.",
    "Now let me check where `{ident}` is used.",
    "Let me update the implementation.",
    "The failure comes from `{ident}` being called before the {noun} is loaded. Let me fix that.",
    "I'll search for other call sites of `{ident}`.",
    "Let me verify the fix.",
    "That import is unused now; removing it.",
];
const THOUGHTS: &[&str] = &[
    "The user wants me to {verb} the {noun} logic in {file}.",
    "I should check how `{ident}` is used before changing its signature.",
    "The test failure suggests `{ident}` returns None when the {noun} is {adj}.",
    "Let me look at the call sites first; there may be more than one.",
    "This is probably a race between the {Cls} and the {adj} cache.",
    "I need to keep backwards compatibility for the {adj} {noun} path.",
    "The simplest fix is to {verb} the {noun} earlier and pass it down.",
    "Running the whole suite takes a while, so I'll run just the {noun} tests first.",
];
const FINAL_OPENERS: &[&str] = &[
    "Done.",
    "All set.",
    "Fixed.",
    "I've made the changes.",
    "The tests pass now.",
    "Here's what I found:",
];
const FINAL_BULLETS: &[&str] = &[
    "- `{file}`: {verb} the {noun} before it is cached",
    "- Added a regression test for the {adj} {noun} case",
    "- Renamed `{ident}` and updated its call sites",
    "- `{file}`: handle an empty {noun} list instead of raising",
];
const LOOP_TEXTS: &[&str] = &[
    "Let me try that again.",
    "Running it once more.",
    "Let me re-check.",
];
const SUBAGENT_PROMPTS: &[&str] = &[
    "Find every place where `{ident}` is called and report file paths with line numbers.",
    "Investigate why the {noun} tests are flaky. Do not change code, just report.",
    "Review the diff on this branch for bugs and missing tests in the {noun} module.",
];
const COMMIT_MESSAGES: &[&str] = &[
    "fix: {verb} {noun} before caching",
    "feat: add {adj} {noun} support",
    "test: cover empty {noun} list",
    "refactor: extract {Cls}",
];
const SUMMARY_TITLES: &[&str] = &[
    "Fix flaky {noun} export test",
    "Refactor {Cls} dependency injection",
    "Add {adj} {noun} support",
    "Debug {noun} 500 errors",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

// ---------------------------------------------------------------------------
// PRNG and deterministic arithmetic
// ---------------------------------------------------------------------------

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a strong 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: a stable hash for names and paths (std's hashers are seeded or
/// unspecified across releases).
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Independent stream seeds: the seed, then a tag per level (corpus, user,
/// session index…), each folded in through the mixer.
fn derive_seed(seed: u64, tags: &[u64]) -> u64 {
    tags.iter().fold(mix64(seed ^ GOLDEN), |s, &t| {
        mix64(s ^ mix64(t.wrapping_add(GOLDEN)))
    })
}

const TAG_CORPUS: u64 = 1;
const TAG_USER: u64 = 2;
const TAG_PLAN: u64 = 3;
const TAG_SESSION: u64 = 4;
const TAG_POOLS: u64 = 5;

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and its stream is
/// fixed by this code alone.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2⁻³² for our n).
    fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo + 1) as usize) as i64
    }

    /// Uniform in `[0, 1)` with 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i + 1));
        }
    }

    /// `k` distinct elements in random order (k is capped at the length).
    fn sample<T: Clone>(&mut self, xs: &[T], k: usize) -> Vec<T> {
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        let k = k.min(xs.len());
        for i in 0..k {
            let j = i + self.below(xs.len() - i);
            idx.swap(i, j);
        }
        idx[..k].iter().map(|&i| xs[i].clone()).collect()
    }

    /// `pick` for word lists, returning the word itself.
    fn word(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len())]
    }

    fn alnum(&mut self, n: usize, out: &mut String) {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for _ in 0..n {
            out.push(ALNUM[self.below(ALNUM.len())] as char);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn uuid(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        // Version 4, RFC 4122 variant, like uuid.UUID(int=…, version=4).
        let hi = (hi & !0xF000) | 0x4000;
        let lo = (lo & !(0xC << 60)) | (0x8 << 60);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

/// e^x from + − × ÷ only (std's `exp` comes from the platform's libm, whose
/// last bit may differ between systems): x = k·ln2 + r, |r| ≤ ln2/2, and a
/// Taylor series for e^r that is exact to the last bit or two.
fn exp_det(x: f64) -> f64 {
    let k = (x / std::f64::consts::LN_2).round();
    let r = x - k * std::f64::consts::LN_2;
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for i in 1..=20 {
        term *= r / f64::from(i);
        sum += term;
    }
    sum * f64::from_bits(((1023 + k as i64) as u64) << 52)
}

/// ln(x) for x > 0, same reason: x = m·2^e with m in [1, 2), then
/// ln m = 2·atanh((m−1)/(m+1)) by its series (|z| ≤ 1/3).
fn ln_det(x: f64) -> f64 {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let (mut term, mut sum) = (z, 0.0f64);
    for i in 0..40 {
        sum += term / f64::from(2 * i + 1);
        term *= z2;
    }
    e as f64 * std::f64::consts::LN_2 + 2.0 * sum
}

/// Inverse CDF of the size distribution, log-linear between anchors.
fn quantile(u: f64) -> f64 {
    for w in SIZE_ANCHORS.windows(2) {
        let ((q0, s0), (q1, s1)) = (w[0], w[1]);
        if u <= q1 {
            return s0 * exp_det((u - q0) / (q1 - q0) * ln_det(s1 / s0));
        }
    }
    SIZE_ANCHORS[SIZE_ANCHORS.len() - 1].1
}

/// Stratified draws, so that even a small corpus follows the distribution
/// (and its total size is predictable).
fn draw_sizes(rng: &mut Rng, n: usize) -> Vec<i64> {
    let mut points: Vec<f64> = (0..n).map(|i| (i as f64 + rng.unit()) / n as f64).collect();
    rng.shuffle(&mut points);
    points
        .into_iter()
        .map(|u| quantile(u).min(SIZE_CAP) as i64)
        .collect()
}

// ---------------------------------------------------------------------------
// JSON values written in Claude Code's key order
// ---------------------------------------------------------------------------

/// A JSON value whose objects keep insertion order (serde_json's `Map`
/// sorts keys unless a crate-wide feature is on), so lines read like the
/// real ones. Serialised by `write_json` with proper escaping.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'static, str>),
    Arr(Vec<J>),
    Obj(Vec<(Cow<'static, str>, J)>),
    /// Already-serialised JSON (a response's usage, repeated on every line).
    Raw(String),
}

impl From<&'static str> for J {
    fn from(s: &'static str) -> Self {
        J::Str(Cow::Borrowed(s))
    }
}
impl From<String> for J {
    fn from(s: String) -> Self {
        J::Str(Cow::Owned(s))
    }
}
impl From<&String> for J {
    fn from(s: &String) -> Self {
        J::Str(Cow::Owned(s.clone()))
    }
}
impl From<i64> for J {
    fn from(n: i64) -> Self {
        J::Int(n)
    }
}
impl From<usize> for J {
    fn from(n: usize) -> Self {
        J::Int(n as i64)
    }
}
impl From<bool> for J {
    fn from(b: bool) -> Self {
        J::Bool(b)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> Self {
        J::Arr(v)
    }
}
impl From<Option<String>> for J {
    fn from(v: Option<String>) -> Self {
        v.map_or(J::Null, J::from)
    }
}

macro_rules! obj {
    ($($k:literal => $v:expr),* $(,)?) => {
        J::Obj(vec![$((Cow::Borrowed($k), J::from($v))),*])
    };
}

impl J {
    fn push(&mut self, key: &'static str, value: impl Into<J>) {
        if let J::Obj(fields) = self {
            fields.push((Cow::Borrowed(key), value.into()));
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Characters of a tool_result content: a string or a list of text blocks.
    fn text_len(&self) -> usize {
        match self {
            J::Str(s) => s.len(),
            J::Arr(items) => items
                .iter()
                .filter_map(|b| b.get("text").and_then(J::as_str))
                .map(str::len)
                .sum(),
            _ => 0,
        }
    }

    fn to_json(&self) -> String {
        let mut out = Vec::new();
        write_json(&mut out, self);
        // write_json only emits valid UTF-8 (strings are copied whole).
        String::from_utf8(out).unwrap_or_default()
    }
}

fn write_json(out: &mut Vec<u8>, v: &J) {
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(true) => out.extend_from_slice(b"true"),
        J::Bool(false) => out.extend_from_slice(b"false"),
        J::Int(n) => {
            let _ = write!(out, "{n}");
        }
        J::Str(s) => write_str(out, s),
        J::Raw(raw) => out.extend_from_slice(raw.as_bytes()),
        J::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        J::Obj(fields) => {
            out.push(b'{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as `json.dumps(…, ensure_ascii=False)` writes it: quotes,
/// backslashes and control characters escaped, everything else raw UTF-8.
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Milliseconds since the epoch → `2026-10-01T09:12:03.123Z` (always 24
/// characters for the years we generate, which keeps sessions shiftable).
fn iso(ms: i64) -> String {
    let dt = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms.rem_euclid(1000)
    )
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The first `n` characters of `s` (never splits a character).
fn prefix_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

// ---------------------------------------------------------------------------
// Template filling and text pools
// ---------------------------------------------------------------------------

/// Session-specific slot values: the project's files and identifiers.
struct Vocab<'a> {
    files: &'a [String],
    idents: Vec<String>,
}

fn push_cap(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(c) = chars.next() {
        out.extend(c.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// Appends one slot's value; false for an unknown slot name.
fn slot(name: &str, rng: &mut Rng, vocab: Option<&Vocab>, out: &mut String) -> bool {
    match name {
        "noun" | "noun2" | "arg" => out.push_str(rng.word(NOUNS)),
        "Noun" => push_cap(out, rng.word(NOUNS)),
        "verb" => out.push_str(rng.word(VERBS)),
        "Verb" => push_cap(out, rng.word(VERBS)),
        "adj" => out.push_str(rng.word(ADJECTIVES)),
        "snake" => {
            out.push_str(rng.word(VERBS));
            out.push('_');
            out.push_str(rng.word(NOUNS));
        }
        "camel" => {
            out.push_str(rng.word(VERBS));
            push_cap(out, rng.word(NOUNS));
        }
        "Cls" => {
            push_cap(out, rng.word(NOUNS));
            out.push_str(rng.word(SUFFIXES));
        }
        "Base" => out.push_str(rng.word(&["object", "BaseModel", "Protocol", "Exception"])),
        "Type" => out.push_str(rng.word(&["str", "int", "dict[str, Any]", "list[str]", "bool"])),
        "TsType" => out.push_str(rng.word(&[
            "string",
            "number",
            "boolean",
            "string[]",
            "Record<string, unknown>",
        ])),
        "GoType" => {
            out.push_str(rng.word(&["string", "int64", "[]byte", "map[string]string", "*Config"]))
        }
        "arg2" => {
            out.push_str(rng.word(NOUNS));
            out.push_str("_id");
        }
        "var" => out.push_str(rng.word(&["result", "items", "value", "resp", "data", "row"])),
        "var2" => out.push_str(rng.word(&["out", "acc", "pending", "batch"])),
        "lit" => {
            let i = rng.below(7);
            match i {
                6 => out.push_str(&rng.int(1, 500).to_string()),
                _ => out.push_str(["None", "0", "[]", "{}", "\"\"", "True"][i]),
            }
        }
        "lit2" => out.push_str(&rng.int(1, 99).to_string()),
        "tslit" => {
            let i = rng.below(6);
            match i {
                5 => out.push_str(&rng.int(1, 99).to_string()),
                _ => out.push_str(["null", "[]", "0", "''", "undefined"][i]),
            }
        }
        "mod" => out.push_str(rng.word(MODULES)),
        "pkg" => out.push_str(rng.word(&["app", "svc", "lib"])),
        "n" => out.push_str(&rng.int(1, 400).to_string()),
        "m" => out.push_str(&rng.int(1, 90).to_string()),
        "pct" => out.push_str(&format!("{:>3}", rng.int(1, 100))),
        "pad" => {
            let n = rng.int(1, 24) as usize;
            out.extend(std::iter::repeat_n(' ', n));
        }
        // Hundredths drawn as integers, so no float formatting is involved.
        "secs" => {
            let c = rng.int(1, 900);
            out.push_str(&format!("{}.{:02}", c / 100, c % 100));
        }
        "port" => out.push_str(rng.word(&["3000", "5173", "8080"])),
        "hash" => out.push_str(&format!("{:07x}", rng.next_u64() >> 36)),
        "plusminus" => {
            let plus = rng.int(1, 9) as usize;
            let minus = rng.int(0, 5) as usize;
            out.extend(std::iter::repeat_n('+', plus));
            out.extend(std::iter::repeat_n('-', minus));
        }
        "desc" => {
            out.push_str(rng.word(VERBS));
            out.push_str("s the ");
            out.push_str(rng.word(ADJECTIVES));
            out.push(' ');
            out.push_str(rng.word(NOUNS));
        }
        "sentence" => {
            push_cap(out, rng.word(VERBS));
            out.push_str(" the ");
            out.push_str(rng.word(ADJECTIVES));
            out.push(' ');
            out.push_str(rng.word(NOUNS));
            out.push_str(" before the ");
            out.push_str(rng.word(NOUNS));
            out.push('.');
        }
        "commit" => {
            let t = rng.word(COMMIT_MESSAGES);
            fill_into(t, rng, None, out);
        }
        "file" => match vocab {
            Some(v) => out.push_str(rng.pick::<String>(v.files)),
            None => return false,
        },
        "ident" | "ident2" => match vocab {
            Some(v) => out.push_str(rng.pick::<String>(&v.idents)),
            None => return false,
        },
        _ => return false,
    }
    true
}

/// Replaces each `{slot}` (a word between braces) whose name is known;
/// other braces stay as written, like gen_sessions.py's regex.
fn fill_into(template: &str, rng: &mut Rng, vocab: Option<&Vocab>, out: &mut String) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            let name = &after[..name_len];
            if slot(name, rng, vocab, out) {
                rest = &after[name_len + 1..];
                continue;
            }
        }
        out.push('{');
        rest = after;
    }
    out.push_str(rest);
}

fn fill(template: &str, rng: &mut Rng, vocab: Option<&Vocab>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    fill_into(template, rng, vocab, &mut out);
    out
}

/// Fixed pools of code and log lines; files and outputs are slices of them,
/// which is what makes generation fast.
struct TextPools {
    code: [Vec<String>; 3],
    logs: [Vec<String>; 6],
}

impl TextPools {
    fn new() -> Self {
        // A fixed seed: the pools are vocabulary, not part of the corpus seed.
        let mut rng = Rng::new(derive_seed(0, &[TAG_POOLS]));
        let code = LANGS.map(|lang| Self::pool(&mut rng, lang.code_templates(), 3000));
        let logs = LOG_KINDS.map(|kind| Self::pool(&mut rng, kind.templates(), 1500));
        TextPools { code, logs }
    }

    fn pool(rng: &mut Rng, templates: &[&str], size: usize) -> Vec<String> {
        (0..size)
            .map(|_| {
                let t = rng.pick(templates);
                fill(t, rng, None)
            })
            .collect()
    }

    /// The same path always has the same content (20..420 lines, mostly short).
    fn file_lines(&self, lang: Lang, path: &str) -> &[String] {
        let h = fnv64(path) as u32;
        let n = 20 + ((h % 1000) as usize).pow(2) / 2500;
        let pool = &self.code[lang.index()];
        let start = (h >> 10) as usize % (pool.len() - n);
        &pool[start..start + n]
    }

    fn log(&self, kind: LogKind, rng: &mut Rng, lines: usize) -> String {
        let pool = &self.logs[kind as usize];
        let start = if lines < pool.len() {
            rng.below(pool.len() - lines)
        } else {
            0
        };
        pool[start..(start + lines).min(pool.len())].join("\n")
    }
}

/// Claude Code's Read format: right-aligned line number, an arrow, the line.
fn numbered(lines: &[String], first: usize) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{:>6}\u{2192}{}", first + i, line));
    }
    out
}

// ---------------------------------------------------------------------------
// Corpus plan: users, projects, sessions
// ---------------------------------------------------------------------------

struct Project {
    name: &'static str,
    cwd: String,
    lang: Lang,
    files: Vec<String>,
    branches: Vec<String>,
}

struct User {
    dir: String,
    first: String,
    model: &'static str,
    one_hour_cache: bool,
    /// Index into `PROMPTS_INTL`; `None` for English only.
    locale: Option<usize>,
    mcp_servers: Vec<&'static str>,
    skills: Vec<&'static str>,
    hooks: bool,
    projects: Vec<Project>,
}

/// Steps and events; the first nine are also forced into some session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Loop,
    Subagent,
    Mcp,
    Skill,
    Slash,
    Rejection,
    Denial,
    /// Three parallel calls whose first fails and is answered last.
    MultiLate,
    ApiError,
    Gap,
    Error,
    /// An ordinary step at the normal rates.
    Tool,
}

impl Action {
    /// Events that shape the prompt; the others shape the turn's first step.
    fn shapes_prompt(self) -> bool {
        matches!(self, Action::Gap | Action::Slash)
    }
}

const FORCED_ONCE: [Action; 11] = [
    Action::Loop,
    Action::Subagent,
    Action::Mcp,
    Action::Skill,
    Action::Slash,
    Action::Rejection,
    Action::Denial,
    Action::MultiLate,
    Action::ApiError,
    Action::Gap,
    Action::Error,
];

struct Plan {
    user: usize,
    project: usize,
    session_id: String,
    /// Planned start, epoch ms; moved earlier if the session would outlast `end`.
    start_ms: i64,
    /// How far before `end` a session that had to be moved ends.
    slack_ms: i64,
    version: String,
    /// Month shown in `ls -la` listings.
    month: &'static str,
    branch: String,
    target_bytes: i64,
    abrupt: bool,
    uses_subagents: bool,
    forced: Vec<Action>,
    seed: u64,
}

struct Corpus {
    users: Vec<User>,
    sessions: Vec<Plan>,
    end_ms: i64,
    window_start_ms: i64,
}

fn make_project(rng: &mut Rng, first: &str, name: &'static str) -> Project {
    let lang = *rng.pick(&LANGS);
    let home = if rng.chance(0.7) {
        format!("/Users/{first}/code")
    } else {
        format!("/home/{first}/src")
    };
    let mut files: Vec<String> = (0..rng.int(25, 60))
        .map(|_| {
            let shape = rng.pick(lang.file_shapes());
            fill(shape, rng, None)
        })
        .collect();
    files.sort();
    files.dedup();
    files.push("README.md".into());
    files.push("Makefile".into());
    let mut branches = vec!["main".to_string()];
    for _ in 0..rng.int(1, 4) {
        let kind = rng.pick(&["feat", "fix", "chore"]);
        let noun = rng.pick(NOUNS);
        let verb = rng.pick(VERBS);
        branches.push(format!("{kind}/{noun}-{verb}"));
    }
    Project {
        name,
        cwd: format!("{home}/{name}"),
        lang,
        files,
        branches,
    }
}

fn make_user(rng: &mut Rng, dir: &str) -> User {
    // The home directory comes from the first name: lower-case ASCII only.
    let first: String = dir
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let first = if first.is_empty() {
        "dev".into()
    } else {
        first
    };
    let count = rng.int(1, 3) as usize;
    let projects = rng
        .sample(PROJECT_NAMES, count)
        .into_iter()
        .map(|p| make_project(rng, &first, p))
        .collect();
    let weights: Vec<f64> = MAIN_MODELS.iter().map(|(_, w)| *w).collect();
    let model = MAIN_MODELS[rng.weighted(&weights)].0;
    let one_hour_cache = rng.chance(0.5);
    let locale = if rng.chance(0.8) {
        None
    } else {
        Some(rng.below(PROMPTS_INTL.len()))
    };
    let mcp_servers = if rng.chance(0.45) {
        let k = rng.int(1, 3) as usize;
        rng.sample(MCP_SERVERS, k)
    } else {
        Vec::new()
    };
    let skills = if rng.chance(0.25) {
        let k = rng.int(1, 2) as usize;
        rng.sample(SKILLS, k)
    } else {
        Vec::new()
    };
    User {
        dir: dir.to_string(),
        first,
        model,
        one_hour_cache,
        locale,
        mcp_servers,
        skills,
        hooks: rng.chance(0.3),
        projects,
    }
}

/// (day index, epoch ms): weekdays favoured, mostly working hours (UTC),
/// within `[window_start, end − 10 min]`.
fn session_start(rng: &mut Rng, window_start_ms: i64, end_ms: i64) -> (i64, i64) {
    let day_of = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .date_naive()
    };
    let first_day: NaiveDate = day_of(window_start_ms);
    let days = (day_of(end_ms) - first_day).num_days() + 1;
    let latest = (end_ms - 600_000).max(window_start_ms);
    let weights: Vec<f64> = (0..days)
        .map(|d| {
            let wd = (first_day + Duration::days(d)).weekday();
            if matches!(wd, Weekday::Sat | Weekday::Sun) {
                0.35
            } else {
                1.0
            }
        })
        .collect();
    let midnight = |d: i64| {
        (first_day + Duration::days(d))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis()
    };
    for _ in 0..64 {
        let d = rng.weighted(&weights) as i64;
        let hour = match rng.weighted(&[0.7, 0.25, 0.05]) {
            0 => rng.int(7, 17),
            1 => rng.int(18, 22),
            _ => rng.int(0, 6),
        };
        let ms = midnight(d)
            + hour * 3_600_000
            + rng.int(0, 59) * 60_000
            + rng.int(0, 59) * 1_000
            + rng.int(0, 999);
        if (window_start_ms..=latest).contains(&ms) {
            return (d * 10 / days, ms);
        }
    }
    let ms = rng.int(window_start_ms, latest);
    let d = (day_of(ms) - first_day).num_days();
    (d * 10 / days, ms)
}

fn plan_corpus(spec: &DemoCorpusSpec) -> Corpus {
    let days = i64::from(spec.days.max(1));
    let end_ms = spec.end.timestamp_millis();
    let window_start_ms = end_ms - days * 86_400_000;
    let mut corpus_rng = Rng::new(derive_seed(spec.seed, &[TAG_CORPUS]));
    let (lo, hi) = spec.sessions_per_user;
    let (lo, hi) = (i64::from(lo.min(hi)), i64::from(lo.max(hi)));

    // A user's profile and session count depend only on the seed and the
    // user's name, so adding a user does not reshuffle the others.
    let mut users = Vec::new();
    let mut counts = Vec::new();
    for name in &spec.users {
        let mut rng = Rng::new(derive_seed(spec.seed, &[TAG_USER, fnv64(name)]));
        users.push(make_user(&mut rng, name));
        counts.push(rng.int(lo, hi) as usize);
    }
    // "Non-English prompts sometimes": make sure some user writes them.
    if users.len() >= 3 && users.iter().all(|u| u.locale.is_none()) {
        let i = corpus_rng.below(users.len());
        users[i].locale = Some(corpus_rng.below(PROMPTS_INTL.len()));
    }

    let total: usize = counts.iter().sum();
    let sizes = draw_sizes(&mut corpus_rng, total);
    let mut sessions = Vec::with_capacity(total);
    for (u, &count) in counts.iter().enumerate() {
        let user = &users[u];
        for k in 0..count {
            let base = derive_seed(spec.seed, &[TAG_SESSION, fnv64(&user.dir), k as u64]);
            let mut rng = Rng::new(derive_seed(base, &[TAG_PLAN]));
            let mut forced = Vec::new();
            if rng.chance(P_SUBAGENT_SESSION) {
                forced.push(Action::Subagent);
            }
            if rng.chance(P_LOOP_SESSION) {
                forced.push(Action::Loop);
            }
            let (version_step, start_ms) = session_start(&mut rng, window_start_ms, end_ms);
            let project = rng.below(user.projects.len());
            let start = DateTime::<Utc>::from_timestamp_millis(start_ms).unwrap_or_default();
            sessions.push(Plan {
                user: u,
                project,
                session_id: rng.uuid(),
                start_ms,
                slack_ms: rng.int(60_000, 40 * 60_000),
                // Versions advance over the month, so both the older `Task`
                // and the newer `Agent` dispatch tool appear.
                version: format!("2.1.{}", 62 + version_step),
                month: MONTHS[start.month0() as usize],
                branch: rng.pick(&user.projects[project].branches).clone(),
                target_bytes: sizes[sessions.len()],
                abrupt: rng.chance(P_ABRUPT),
                uses_subagents: forced.contains(&Action::Subagent),
                forced,
                seed: derive_seed(base, &[TAG_SESSION]),
            });
        }
    }
    // Rare events are forced once each into some session, so that every
    // finding type and feature shows in even a small demo.
    if !sessions.is_empty() {
        for action in FORCED_ONCE {
            let i = corpus_rng.below(sessions.len());
            sessions[i].forced.push(action);
            if action == Action::Subagent {
                sessions[i].uses_subagents = true;
            }
        }
        if !sessions.iter().any(|s| s.abrupt) {
            let i = corpus_rng.below(sessions.len());
            sessions[i].abrupt = true;
        }
    }
    Corpus {
        users,
        sessions,
        end_ms,
        window_start_ms,
    }
}

// ---------------------------------------------------------------------------
// Session building
// ---------------------------------------------------------------------------

struct Built {
    buf: Vec<u8>,
    lines: u64,
    last_ms: i64,
}

/// Simulates a session so that it lies within `[window_start, end]`; see the
/// module docs for why re-running from an earlier start shifts it exactly.
fn build_in_window(corpus: &Corpus, plan: &Plan, pools: &TextPools) -> Built {
    let mut start = plan.start_ms;
    let mut target = plan.target_bytes;
    let mut built = Session::new(corpus, plan, pools, start, target).build();
    for _ in 0..8 {
        if built.last_ms <= corpus.end_ms {
            break;
        }
        let shifted = start - (built.last_ms - corpus.end_ms) - plan.slack_ms;
        if shifted >= corpus.window_start_ms {
            start = shifted;
        } else {
            // Only with a window of a day or so: longer than the window,
            // so start at its beginning with a smaller budget.
            start = corpus.window_start_ms;
            target /= 2;
        }
        built = Session::new(corpus, plan, pools, start, target).build();
    }
    built
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Error,
    Rejected,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolKind {
    Read,
    Bash,
    Edit,
    Grep,
    Glob,
    Write,
    TodoWrite,
    WebFetch,
    Mcp,
    Skill,
}

/// Tools the model calls several at a time.
const PARALLEL: [ToolKind; 4] = [
    ToolKind::Read,
    ToolKind::Grep,
    ToolKind::Glob,
    ToolKind::Bash,
];
const MAIN_TOOL_WEIGHTS: [(ToolKind, f64); 8] = [
    (ToolKind::Read, 28.0),
    (ToolKind::Bash, 25.0),
    (ToolKind::Edit, 16.0),
    (ToolKind::Grep, 9.0),
    (ToolKind::Glob, 5.0),
    (ToolKind::Write, 4.0),
    (ToolKind::TodoWrite, 5.0),
    (ToolKind::WebFetch, 2.0),
];
const SIDECHAIN_TOOL_WEIGHTS: [(ToolKind, f64); 4] = [
    (ToolKind::Read, 40.0),
    (ToolKind::Grep, 25.0),
    (ToolKind::Glob, 15.0),
    (ToolKind::Bash, 20.0),
];

#[derive(Debug, Clone)]
struct ToolCall {
    name: String,
    input: J,
    /// tool_result content on success: a string or a list of text blocks.
    result: J,
    /// Top-level `toolUseResult` on success.
    result_object: J,
    /// tool_result content on failure.
    error: String,
    duration_ms: (i64, i64),
    /// "write to /x" for permission-gated tools; None for read-only ones.
    denial_subject: Option<String>,
    outcome: Outcome,
    id: String,
}

impl ToolCall {
    /// Name + serialised input: equal for identical calls (inputs are built
    /// with a fixed key order), which is what the loop finding compares.
    fn signature(&self) -> String {
        format!("{}{}", self.name, self.input.to_json())
    }
}

/// The main conversation or one subagent's sidechain, with its own context.
struct Thread {
    sidechain: bool,
    model: &'static str,
    agent_id: Option<String>,
    last_uuid: Option<String>,
    context_tokens: i64,
    pending_tokens: i64,
    cache_cold: bool,
}

const MAIN: usize = 0;
const AGENT: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Results {
    /// All results follow the response's last line (so a multi-call
    /// response has results that arrive after other tool_use lines).
    After,
    /// Each result follows its tool_use line.
    Interleaved,
    /// The caller writes them (subagent dispatches).
    Deferred,
}

struct LastResponse {
    id: String,
    model: &'static str,
    usage: String,
}

struct Session<'a> {
    rng: Rng,
    pools: &'a TextPools,
    plan: &'a Plan,
    user: &'a User,
    project: &'a Project,
    vocab: Vocab<'a>,
    target: i64,
    buf: Vec<u8>,
    lines: u64,
    clock: i64,
    last_main: Option<Role>,
    /// Main thread and the current subagent's sidechain.
    threads: [Thread; 2],
    forced: Vec<Action>,
    /// Of the last main-thread tool_use: ordinary calls never repeat it, so
    /// loops come only from `run_loop`.
    last_signature: String,
    tracked_files: Vec<(String, i64)>,
    queued_prompt: Option<String>,
    turn_started: i64,
    dispatch_tool: &'static str,
    tool_kinds: Vec<ToolKind>,
    tool_weights: Vec<f64>,
    last_response: Option<LastResponse>,
}

impl<'a> Session<'a> {
    fn new(
        corpus: &'a Corpus,
        plan: &'a Plan,
        pools: &'a TextPools,
        start: i64,
        target: i64,
    ) -> Self {
        let user = &corpus.users[plan.user];
        let project = &user.projects[plan.project];
        let mut rng = Rng::new(plan.seed);
        let idents = ["{snake}", "{camel}", "{Cls}"]
            .iter()
            .cycle()
            .take(12)
            .map(|t| fill(t, &mut rng, None))
            .collect();
        let mut tool_kinds: Vec<ToolKind> = MAIN_TOOL_WEIGHTS.iter().map(|(k, _)| *k).collect();
        let mut tool_weights: Vec<f64> = MAIN_TOOL_WEIGHTS.iter().map(|(_, w)| *w).collect();
        if !user.mcp_servers.is_empty() {
            tool_kinds.push(ToolKind::Mcp);
            tool_weights.push(4.0);
        }
        if !user.skills.is_empty() {
            tool_kinds.push(ToolKind::Skill);
            tool_weights.push(0.7);
        }
        let minor: i64 = plan
            .version
            .rsplit('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let pending = rng.int(14_000, 24_000);
        Session {
            pools,
            plan,
            user,
            project,
            vocab: Vocab {
                files: &project.files,
                idents,
            },
            target,
            buf: Vec::with_capacity(target.clamp(0, 4_000_000) as usize + 64 * 1024),
            lines: 0,
            clock: start,
            last_main: None,
            threads: [
                Thread {
                    sidechain: false,
                    model: user.model,
                    agent_id: None,
                    last_uuid: None,
                    context_tokens: 0,
                    pending_tokens: pending,
                    cache_cold: false,
                },
                Thread {
                    sidechain: true,
                    model: user.model,
                    agent_id: None,
                    last_uuid: None,
                    context_tokens: 0,
                    pending_tokens: 0,
                    cache_cold: false,
                },
            ],
            forced: plan.forced.clone(),
            last_signature: String::new(),
            tracked_files: Vec::new(),
            queued_prompt: None,
            turn_started: start,
            // The dispatch tool was renamed from Task to Agent in 2.1.68.
            dispatch_tool: if minor < 68 { "Task" } else { "Agent" },
            tool_kinds,
            tool_weights,
            last_response: None,
            rng,
        }
    }

    // -- session level ------------------------------------------------------

    fn build(mut self) -> Built {
        self.preamble();
        loop {
            let event = if self.forced.is_empty() {
                if self.room() <= 0 {
                    break;
                }
                None
            } else {
                Some(self.forced.remove(0))
            };
            self.turn(event);
        }
        self.finish();
        debug_assert_eq!(
            self.last_main,
            Some(if self.plan.abrupt {
                Role::User
            } else {
                Role::Assistant
            })
        );
        Built {
            buf: self.buf,
            lines: self.lines,
            last_ms: self.clock,
        }
    }

    /// Bytes left in the session's budget; keeps small sessions small.
    fn room(&self) -> i64 {
        self.target - self.buf.len() as i64
    }

    fn preamble(&mut self) {
        // A resumed session starts with summaries of earlier ones.
        if self.rng.chance(0.12) {
            for _ in 0..self.rng.int(1, 3) {
                let summary = self.text_of(SUMMARY_TITLES);
                let leaf = self.rng.uuid();
                self.emit(&obj! {"type" => "summary", "summary" => summary, "leafUuid" => leaf});
            }
        }
    }

    /// Abrupt sessions end on an unanswered user line, the others on an answer.
    fn finish(&mut self) {
        if self.plan.abrupt {
            if self.last_main != Some(Role::User) {
                self.advance(4_000, 240_000);
                self.prompt(None);
            }
        } else if self.last_main != Some(Role::Assistant) {
            self.advance(4_000, 240_000);
            self.prompt(None);
            self.final_answer();
        }
    }

    // -- helpers --------------------------------------------------------------

    fn text(&mut self, template: &str) -> String {
        fill(template, &mut self.rng, Some(&self.vocab))
    }

    fn text_of(&mut self, templates: &[&str]) -> String {
        let t = self.rng.pick(templates);
        self.text(t)
    }

    fn abs(&self, rel: &str) -> String {
        format!("{}/{}", self.project.cwd, rel)
    }

    fn advance(&mut self, lo: i64, hi: i64) {
        self.clock += self.rng.int(lo, hi);
    }

    fn message_id(&mut self) -> String {
        let mut s = String::from("msg_01");
        self.rng.alnum(22, &mut s);
        s
    }

    fn request_id(&mut self) -> String {
        let mut s = String::from("req_011C");
        self.rng.alnum(20, &mut s);
        s
    }

    fn tool_use_id(&mut self) -> String {
        let mut s = String::from("toolu_01");
        self.rng.alnum(22, &mut s);
        s
    }

    fn signature_blob(&mut self) -> String {
        let n = self.rng.int(150, 600) as usize;
        base64(&self.rng.bytes(n))
    }

    // -- line writer ----------------------------------------------------------

    fn emit(&mut self, line: &J) {
        write_json(&mut self.buf, line);
        self.buf.push(b'\n');
        self.lines += 1;
    }

    /// The fields every chained line starts with.
    fn head(&self, t: usize) -> Vec<(Cow<'static, str>, J)> {
        let th = &self.threads[t];
        let mut f: Vec<(Cow<'static, str>, J)> = vec![
            ("parentUuid".into(), J::from(th.last_uuid.clone())),
            ("isSidechain".into(), J::Bool(th.sidechain)),
            ("userType".into(), "external".into()),
            ("cwd".into(), J::from(&self.project.cwd)),
            ("sessionId".into(), J::from(&self.plan.session_id)),
            ("version".into(), J::from(&self.plan.version)),
            ("gitBranch".into(), J::from(&self.plan.branch)),
        ];
        if let Some(agent) = &th.agent_id {
            f.push(("agentId".into(), J::from(agent)));
        }
        f
    }

    /// A chained line: common fields, body, uuid, timestamp, then `tail`.
    fn conversation(
        &mut self,
        t: usize,
        body: J,
        uuid: Option<String>,
        tail: Option<(&'static str, J)>,
        role: Option<Role>,
    ) -> String {
        let uid = uuid.unwrap_or_else(|| self.rng.uuid());
        let mut fields = self.head(t);
        if let J::Obj(body) = body {
            fields.extend(body);
        }
        fields.push(("uuid".into(), J::from(&uid)));
        fields.push(("timestamp".into(), J::from(iso(self.clock))));
        if let Some((k, v)) = tail {
            fields.push((k.into(), v));
        }
        self.emit(&J::Obj(fields));
        let th = &mut self.threads[t];
        th.last_uuid = Some(uid.clone());
        if !th.sidechain && role.is_some() {
            self.last_main = role;
        }
        uid
    }

    fn user_line(
        &mut self,
        t: usize,
        content: J,
        uuid: Option<String>,
        meta: bool,
        tool_use_result: Option<J>,
    ) -> String {
        self.user_line_with(t, content, uuid, meta, Vec::new(), tool_use_result)
    }

    fn user_line_with(
        &mut self,
        t: usize,
        content: J,
        uuid: Option<String>,
        meta: bool,
        extra: Vec<(&'static str, J)>,
        tool_use_result: Option<J>,
    ) -> String {
        let mut body =
            obj! {"type" => "user", "message" => obj!{"role" => "user", "content" => content}};
        if meta {
            body.push("isMeta", true);
        }
        for (k, v) in extra {
            body.push(k, v);
        }
        let tail = tool_use_result.map(|r| ("toolUseResult", r));
        self.conversation(t, body, uuid, tail, Some(Role::User))
    }

    fn assistant_line(
        &mut self,
        t: usize,
        message: J,
        request_id: Option<String>,
        api_error: bool,
    ) {
        let mut body = obj! {"message" => message};
        if let Some(r) = request_id {
            body.push("requestId", r);
        }
        body.push("type", "assistant");
        if api_error {
            body.push("isApiErrorMessage", true);
        }
        self.conversation(t, body, None, None, Some(Role::Assistant));
    }

    fn system_line(
        &mut self,
        t: usize,
        subtype: &'static str,
        level: &'static str,
        fields: J,
        root: bool,
    ) {
        let mut body = obj! {"type" => "system", "subtype" => subtype, "level" => level};
        if let (J::Obj(b), J::Obj(f)) = (&mut body, fields) {
            b.extend(f);
        }
        body.push("isMeta", false);
        if root {
            // compact_boundary starts a new chain that points back logically.
            let saved = self.threads[t].last_uuid.take();
            body.push("logicalParentUuid", saved);
        }
        self.conversation(t, body, None, None, None);
    }

    fn progress_line(
        &mut self,
        t: usize,
        data: J,
        tool_use_id: String,
        parent_tool_use_id: String,
    ) {
        let mut fields = self.head(t);
        let uid = self.rng.uuid();
        fields.extend([
            ("type".into(), "progress".into()),
            ("data".into(), data),
            ("toolUseID".into(), tool_use_id.into()),
            ("parentToolUseID".into(), parent_tool_use_id.into()),
            ("uuid".into(), uid.into()),
            ("timestamp".into(), iso(self.clock).into()),
        ]);
        self.emit(&J::Obj(fields));
    }

    fn queue_line(&mut self, operation: &'static str, content: Option<String>) {
        let mut line = obj! {
            "type" => "queue-operation",
            "operation" => operation,
            "timestamp" => iso(self.clock),
            "sessionId" => &self.plan.session_id,
        };
        if let Some(c) = content {
            line.push("content", c);
        }
        self.emit(&line);
    }

    // -- turns --------------------------------------------------------------

    fn turn(&mut self, event: Option<Action>) {
        self.before_prompt(event == Some(Action::Gap));
        if event == Some(Action::Slash) || (event.is_none() && self.rng.chance(P_SLASH)) {
            self.prompt_command();
        } else {
            // Screenshots only in sessions big enough to hold one.
            let image = if self.rng.chance(P_IMAGE) && self.room() > 300_000 {
                Some(self.rng.int(20_000, 250_000))
            } else {
                None
            };
            self.prompt(image);
        }
        self.work(event.filter(|e| !e.shapes_prompt()));
    }

    fn before_prompt(&mut self, force_gap: bool) {
        if force_gap || self.rng.chance(P_IDLE_GAP) {
            self.advance(15 * 60_000, 180 * 60_000);
            self.threads[MAIN].cache_cold = true;
        } else {
            self.advance(4_000, 240_000);
        }
        if self.threads[MAIN].context_tokens > COMPACT_AT_TOKENS {
            self.compact("auto");
        }
        if self.rng.chance(P_LOCAL_COMMAND) {
            self.local_command();
        }
    }

    /// Assistant steps for one prompt, then the final answer.
    fn work(&mut self, event: Option<Action>) {
        let mut steps = 1;
        while steps < 30 && self.rng.chance(P_ANOTHER_STEP) {
            steps += 1;
        }
        for step in 0..steps {
            let action = match event {
                Some(e) if step == 0 => e,
                _ => self.random_action(),
            };
            if self.step(action) {
                return; // the turn was cut short by the user or the API
            }
            if self.queued_prompt.is_none() && self.rng.chance(P_QUEUE) {
                let q = self.text_of(PROMPTS_EN);
                self.queued_prompt = Some(q.clone());
                self.queue_line("enqueue", Some(q));
            }
            if self.rng.chance(P_INTERRUPT) {
                self.advance(500, 5_000);
                self.user_line(
                    MAIN,
                    vec![obj! {"type" => "text", "text" => INTERRUPTED}].into(),
                    None,
                    false,
                    None,
                );
                return;
            }
            if self.room() <= 0 {
                if self.plan.abrupt && self.forced.is_empty() {
                    return; // killed mid-turn: the last line is a tool result
                }
                break;
            }
        }
        self.final_answer();
    }

    fn random_action(&mut self) -> Action {
        if self.plan.uses_subagents && self.rng.chance(P_SUBAGENT_STEP) {
            Action::Subagent
        } else if self.rng.chance(P_LOOP_STEP) {
            Action::Loop
        } else {
            Action::Tool
        }
    }

    /// One assistant response and its tool results; true when the turn ends early.
    fn step(&mut self, action: Action) -> bool {
        match action {
            Action::Subagent => {
                self.dispatch_subagent();
                return false;
            }
            Action::Loop => {
                self.run_loop();
                return false;
            }
            _ => {}
        }
        if self.api_failure(action == Action::ApiError) {
            return true;
        }
        let mut calls = self.calls_for(action);
        let results = if action == Action::MultiLate || calls.len() == 1 || self.rng.chance(0.5) {
            Results::After
        } else {
            Results::Interleaved
        };
        let text = self.maybe_text(STEP_TEXTS, 0.45);
        let thinking = self.maybe_thinking(0.4);
        self.respond(MAIN, &mut calls, text, thinking, results);
        if calls.iter().any(|c| c.outcome == Outcome::Rejected) {
            self.advance(300, 3_000);
            self.user_line(
                MAIN,
                vec![obj! {"type" => "text", "text" => INTERRUPTED_FOR_TOOL}].into(),
                None,
                false,
                None,
            );
            return true;
        }
        false
    }

    /// The tool calls of one step: forced by an event, or at the normal rates.
    fn calls_for(&mut self, action: Action) -> Vec<ToolCall> {
        let forced = |kind, outcome| Some((kind, outcome));
        let single = match action {
            Action::MultiLate => {
                let kinds: Vec<ToolKind> = (0..3)
                    .map(|_| {
                        *self
                            .rng
                            .pick(&[ToolKind::Read, ToolKind::Grep, ToolKind::Glob])
                    })
                    .collect();
                let mut calls = self.fresh_calls(&kinds);
                calls[0].outcome = Outcome::Error; // answered after the others' tool_use lines
                return calls;
            }
            Action::Error => forced(self.pick_tool(), Outcome::Error),
            Action::Mcp => forced(ToolKind::Mcp, Outcome::Ok),
            Action::Skill => forced(ToolKind::Skill, Outcome::Ok),
            Action::Rejection => forced(self.gated_tool(), Outcome::Rejected),
            Action::Denial => forced(self.gated_tool(), Outcome::Denied),
            _ => None,
        };
        if let Some((kind, outcome)) = single {
            let mut calls = self.fresh_calls(&[kind]);
            calls[0].outcome = outcome;
            return calls;
        }
        let count = if self.rng.unit() >= P_MULTI_TOOL {
            1
        } else {
            self.rng.int(2, 3) as usize
        };
        let kinds: Vec<ToolKind> = if count == 1 {
            vec![self.pick_tool()]
        } else {
            (0..count).map(|_| *self.rng.pick(&PARALLEL)).collect()
        };
        let mut calls = self.fresh_calls(&kinds);
        for call in &mut calls {
            call.outcome = self.random_outcome(call, count == 1);
        }
        calls
    }

    fn gated_tool(&mut self) -> ToolKind {
        *self
            .rng
            .pick(&[ToolKind::Bash, ToolKind::Edit, ToolKind::Write])
    }

    fn pick_tool(&mut self) -> ToolKind {
        let i = self.rng.weighted(&self.tool_weights);
        self.tool_kinds[i]
    }

    fn random_outcome(&mut self, call: &ToolCall, single: bool) -> Outcome {
        if single && call.denial_subject.is_some() {
            let r = self.rng.unit();
            if r < P_DENY {
                return Outcome::Denied;
            }
            if r < P_DENY + P_REJECT {
                return Outcome::Rejected;
            }
        }
        if self.rng.chance(P_ERROR) {
            Outcome::Error
        } else {
            Outcome::Ok
        }
    }

    /// Calls that never repeat the previous main-thread call.
    fn fresh_calls(&mut self, kinds: &[ToolKind]) -> Vec<ToolCall> {
        let mut previous = self.last_signature.clone();
        let mut calls = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let call = self.unique(|s| s.make(kind), &previous);
            previous = call.signature();
            calls.push(call);
        }
        calls
    }

    fn unique(&mut self, make: impl Fn(&mut Self) -> ToolCall, previous: &str) -> ToolCall {
        for _ in 0..8 {
            let call = make(self);
            if call.signature() != previous {
                return call;
            }
        }
        loop {
            let call = self.read();
            if call.signature() != previous {
                return call;
            }
        }
    }

    // -- prompts and commands -----------------------------------------------

    fn prompt_text(&mut self) -> String {
        if let Some(locale) = self.user.locale {
            if self.rng.chance(0.6) {
                return self.text_of(PROMPTS_INTL[locale]);
            }
        }
        self.text_of(PROMPTS_EN)
    }

    fn snapshot(&mut self, message_uuid: &str) {
        let backups: Vec<(Cow<'static, str>, J)> = self
            .tracked_files
            .iter()
            .map(|(path, version)| {
                let backup = obj! {
                    "backupFileName" => format!("{:08x}{:08x}@v{}", fnv64(path) as u32, version, version),
                    "version" => *version,
                    "backupTime" => iso(self.clock - 1_000 * version),
                };
                (Cow::Owned(path.clone()), backup)
            })
            .collect();
        let line = obj! {
            "type" => "file-history-snapshot",
            "messageId" => message_uuid.to_string(),
            "snapshot" => obj!{
                "messageId" => message_uuid.to_string(),
                "trackedFileBackups" => J::Obj(backups),
                "timestamp" => iso(self.clock),
            },
            "isSnapshotUpdate" => false,
        };
        self.emit(&line);
    }

    fn prompt(&mut self, image_bytes: Option<i64>) {
        let text = match self.queued_prompt.take() {
            Some(q) => {
                self.queue_line("dequeue", None);
                q
            }
            None => self.prompt_text(),
        };
        let uid = self.rng.uuid();
        if self.rng.chance(0.9) {
            self.snapshot(&uid);
        }
        let tokens = text.len() as i64 / 3 + 40;
        let content = match image_bytes {
            Some(n) => {
                let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
                png.extend(self.rng.bytes((n * 3 / 4) as usize));
                self.threads[MAIN].pending_tokens += 1_600;
                J::Arr(vec![
                    obj! {"type" => "text", "text" => text},
                    obj! {"type" => "image", "source" => obj!{
                    "type" => "base64", "media_type" => "image/png", "data" => base64(&png)}},
                ])
            }
            None => J::from(text),
        };
        self.user_line(MAIN, content, Some(uid), false, None);
        self.turn_started = self.clock;
        self.threads[MAIN].pending_tokens += tokens;
    }

    fn command_line(&mut self, name: &str, args: &str, message: &str) {
        let line = format!(
            "<command-message>{message}</command-message>\n<command-name>{name}</command-name>\n<command-args>{args}</command-args>"
        );
        self.user_line(MAIN, line.into(), None, false, None);
    }

    /// A prompt-type slash command: the command line, then its expanded (meta) prompt.
    fn prompt_command(&mut self) {
        let name = *self.rng.pick(PROMPT_COMMANDS);
        let args = if name == "/fix-issue" {
            self.text("{ident}")
        } else {
            String::new()
        };
        self.command_line(name, &args, &format!("{} is running\u{2026}", &name[1..]));
        self.advance(20, 200);
        let expanded = self.text(&format!(
            "Run the {} workflow for this repository. Focus on {{file}} and report problems as a numbered list.",
            &name[1..]
        ));
        self.user_line(
            MAIN,
            vec![obj! {"type" => "text", "text" => expanded}].into(),
            None,
            true,
            None,
        );
        self.threads[MAIN].pending_tokens += 400;
    }

    /// A local slash command: caveat, command line and its stdout; no model call.
    fn local_command(&mut self) {
        let name = *self.rng.pick(LOCAL_COMMANDS);
        self.user_line(
            MAIN,
            "Caveat: The messages below were generated by the user while running local commands. \
             DO NOT respond to these messages or otherwise consider them in your response unless \
             the user explicitly asks you to."
                .into(),
            None,
            true,
            None,
        );
        let mut args = String::new();
        if name == "/model" {
            let model = MAIN_MODELS[self.rng.below(2)].0;
            self.threads[MAIN].model = model;
            args = model.split('-').nth(1).unwrap_or("").to_string();
        }
        self.command_line(name, &args, &name[1..]);
        if name == "/compact" {
            self.compact("manual");
        }
        let template = local_output(name)
            .replace("{model}", &format!("{args} ({})", self.threads[MAIN].model));
        let stdout = self.text(&template);
        self.advance(50, 1_500);
        self.user_line(
            MAIN,
            format!("<local-command-stdout>{stdout}</local-command-stdout>").into(),
            None,
            false,
            None,
        );
    }

    fn compact(&mut self, trigger: &'static str) {
        let pre = self.threads[MAIN].context_tokens;
        self.system_line(
            MAIN,
            "compact_boundary",
            "info",
            obj! {"content" => "Conversation compacted",
            "compactMetadata" => obj!{"trigger" => trigger, "preTokens" => pre}},
            true,
        );
        let n = self.rng.int(10, 40);
        let summary: Vec<String> = (0..n).map(|_| self.text_of(THOUGHTS)).collect();
        self.advance(20_000, 90_000);
        let text = format!(
            "This session is being continued from a previous conversation that ran out of context. \
             The conversation is summarized below:\nAnalysis:\n{}",
            summary.join(" ")
        );
        self.user_line_with(
            MAIN,
            text.into(),
            None,
            false,
            vec![
                ("isCompactSummary", J::Bool(true)),
                ("isVisibleInTranscriptOnly", J::Bool(true)),
            ],
            None,
        );
        self.threads[MAIN].context_tokens = 0;
        self.threads[MAIN].pending_tokens = self.rng.int(18_000, 30_000);
    }

    // -- assistant responses ------------------------------------------------

    fn maybe_text(&mut self, templates: &[&str], p: f64) -> Option<String> {
        if self.rng.chance(p) {
            Some(self.text_of(templates))
        } else {
            None
        }
    }

    fn maybe_thinking(&mut self, p: f64) -> Option<String> {
        if self.threads[MAIN].model.starts_with("claude-haiku") || !self.rng.chance(p) {
            return None;
        }
        let n = self.rng.int(1, 6);
        let parts: Vec<String> = (0..n).map(|_| self.text_of(THOUGHTS)).collect();
        Some(parts.join(" "))
    }

    fn final_answer(&mut self) {
        let k = self.rng.int(1, 4) as usize;
        let bullets: Vec<String> = self
            .rng
            .sample(FINAL_BULLETS, k)
            .into_iter()
            .map(|b| self.text(b))
            .collect();
        let opener = *self.rng.pick(FINAL_OPENERS);
        let thinking = self.maybe_thinking(0.25);
        let text = format!("{opener}\n\n{}", bullets.join("\n"));
        self.respond(MAIN, &mut [], Some(text), thinking, Results::After);
        if self.rng.chance(0.5) {
            self.advance(5, 50);
            let ms = self.clock - self.turn_started;
            self.system_line(
                MAIN,
                "turn_duration",
                "info",
                obj! {"durationMs" => ms},
                false,
            );
        }
    }

    /// Prompt caching: the previous context is read, what was added since is
    /// written; after an idle gap a 5-minute cache has expired.
    fn usage_for(&mut self, t: usize, output_tokens: i64) -> String {
        let one_hour = self.user.one_hour_cache;
        let input = self.rng.int(1, 9);
        let th = &mut self.threads[t];
        let (mut read, mut creation) = (th.context_tokens, th.pending_tokens);
        if th.cache_cold && !one_hour {
            (read, creation) = (0, read + creation);
        }
        th.cache_cold = false;
        th.context_tokens = read + creation + output_tokens;
        th.pending_tokens = 0;
        let (m5, h1) = if one_hour {
            (0, creation)
        } else {
            (creation, 0)
        };
        obj! {
            "input_tokens" => input,
            "cache_creation_input_tokens" => creation,
            "cache_read_input_tokens" => read,
            "cache_creation" => obj!{"ephemeral_5m_input_tokens" => m5, "ephemeral_1h_input_tokens" => h1},
            "output_tokens" => output_tokens,
            "service_tier" => "standard",
        }
        .to_json()
    }

    /// One API response written as one line per content block (each
    /// repeating id, requestId and the full usage), plus the tool results.
    fn respond(
        &mut self,
        t: usize,
        calls: &mut [ToolCall],
        text: Option<String>,
        thinking: Option<String>,
        results: Results,
    ) -> String {
        let mut chars = 0usize;
        let mut blocks: Vec<(J, Option<usize>)> = Vec::new();
        let hidden = if thinking.is_some() {
            self.rng.int(40, 1_200)
        } else {
            0
        };
        if let Some(th) = thinking {
            chars += th.len();
            let signature = self.signature_blob();
            blocks.push((
                obj! {"type" => "thinking", "thinking" => th, "signature" => signature},
                None,
            ));
        }
        if let Some(tx) = text {
            chars += tx.len();
            blocks.push((obj! {"type" => "text", "text" => tx}, None));
        }
        for (i, call) in calls.iter_mut().enumerate() {
            call.id = self.tool_use_id();
            chars += call.input.to_json().len();
            blocks.push((
                obj! {"type" => "tool_use", "id" => &call.id, "name" => &call.name, "input" => call.input.clone()},
                Some(i),
            ));
        }
        let output = chars as i64 / 4 + hidden + self.rng.int(8, 90);
        let usage = self.usage_for(t, output);
        let message_id = self.message_id();
        let request_id = self.request_id();
        let model = self.threads[t].model;
        self.last_response = Some(LastResponse {
            id: message_id.clone(),
            model,
            usage: usage.clone(),
        });
        self.advance(1_500, 12_000 + chars as i64 * 5);
        let stop = if calls.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        };
        for (block, call) in blocks {
            let message = obj! {
                "model" => model,
                "id" => &message_id,
                "type" => "message",
                "role" => "assistant",
                "content" => vec![block],
                "stop_reason" => stop,
                "stop_sequence" => J::Null,
                "usage" => J::Raw(usage.clone()),
            };
            self.assistant_line(t, message, Some(request_id.clone()), false);
            if let Some(i) = call {
                if t == MAIN {
                    self.last_signature = calls[i].signature();
                }
                if results == Results::Interleaved {
                    self.tool_result(t, &calls[i]);
                }
            }
            self.advance(200, 2_500);
        }
        if results == Results::After {
            for call in calls.iter() {
                self.tool_result(t, call);
            }
        }
        message_id
    }

    fn tool_result(&mut self, t: usize, call: &ToolCall) {
        self.progress(t, call);
        self.advance(call.duration_ms.0, call.duration_ms.1);
        let (content, result_object): (J, J) = match call.outcome {
            Outcome::Ok => (call.result.clone(), call.result_object.clone()),
            Outcome::Error => (
                J::from(&call.error),
                J::from(format!("Error: {}", call.error)),
            ),
            Outcome::Rejected => (REJECTION_TEXT.into(), REJECTION_RESULT.into()),
            Outcome::Denied => {
                let text = format!(
                    "Claude requested permissions to {}, {DENIAL_MARK}.",
                    call.denial_subject.as_deref().unwrap_or("use this tool")
                );
                (J::from(text.clone()), J::from(format!("Error: {text}")))
            }
        };
        let tokens = content.text_len() as i64 / 4;
        let mut block =
            obj! {"tool_use_id" => &call.id, "type" => "tool_result", "content" => content};
        if call.outcome != Outcome::Ok {
            block.push("is_error", true);
        }
        self.user_line(t, vec![block].into(), None, false, Some(result_object));
        self.threads[t].pending_tokens += tokens;
        if call.outcome == Outcome::Ok && (call.name == "Edit" || call.name == "Write") && t == MAIN
        {
            if let Some(path) = call.input.get("file_path").and_then(J::as_str) {
                match self.tracked_files.iter_mut().find(|(p, _)| p == path) {
                    Some((_, v)) => *v += 1,
                    None => self.tracked_files.push((path.to_string(), 1)),
                }
            }
        }
    }

    /// Live output lines for slow Bash commands and hook lines after edits.
    fn progress(&mut self, t: usize, call: &ToolCall) {
        if t != MAIN {
            return;
        }
        if call.name == "Bash"
            && matches!(call.outcome, Outcome::Ok | Outcome::Error)
            && call.duration_ms.1 > 10_000
        {
            let shown = prefix_chars(call.result.as_str().unwrap_or(""), 400).to_string();
            let total_lines = shown.matches('\n').count() + 1;
            for second in 1..=self.rng.int(1, 3) {
                self.advance(1_000, 3_000);
                let data = obj! {
                    "type" => "bash_progress",
                    "output" => &shown,
                    "fullOutput" => &shown,
                    "elapsedTimeSeconds" => second * 2,
                    "totalLines" => total_lines,
                };
                self.progress_line(
                    t,
                    data,
                    format!("bash-progress-{}", second - 1),
                    call.id.clone(),
                );
            }
        }
        if (call.name == "Edit" || call.name == "Write")
            && call.outcome == Outcome::Ok
            && self.user.hooks
        {
            let data = obj! {
                "type" => "hook_progress",
                "hookEvent" => "PostToolUse",
                "hookName" => format!("PostToolUse:{}", call.name),
                "command" => "npx prettier --write \"$CLAUDE_FILE_PATHS\"",
            };
            self.progress_line(t, data, call.id.clone(), call.id.clone());
        }
    }

    /// Retried API errors before a response; rarely the retries give up and
    /// Claude Code writes a `<synthetic>` error message (true: the turn ends).
    /// A forced event always gives up, so the demo shows one.
    fn api_failure(&mut self, forced: bool) -> bool {
        if !forced && !self.rng.chance(P_API_ERROR) {
            return false;
        }
        for attempt in 1..=self.rng.int(1, 3) {
            self.advance(1_000, 4_000);
            let request = self.request_id();
            let fields = obj! {
                "error" => obj!{"status" => 529_i64, "error" => obj!{"type" => "error", "error" => obj!{
                    "type" => "overloaded_error", "message" => "Overloaded"}}, "requestID" => request},
                "retryInMs" => 1_000 * (1_i64 << attempt),
                "retryAttempt" => attempt,
                "maxRetries" => 10_i64,
            };
            self.system_line(MAIN, "api_error", "error", fields, false);
            self.clock += 1_000 * (1 << attempt);
        }
        if !forced && self.rng.chance(0.8) {
            return false;
        }
        let id = self.rng.uuid();
        let message = obj! {
            "id" => id,
            "model" => SYNTHETIC_MODEL,
            "role" => "assistant",
            "type" => "message",
            "content" => vec![obj!{"type" => "text",
                "text" => "API Error: 529 {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"}],
            "stop_reason" => "stop_sequence",
            "stop_sequence" => "",
            "usage" => obj!{"input_tokens" => 0_i64, "output_tokens" => 0_i64,
                "cache_creation_input_tokens" => 0_i64, "cache_read_input_tokens" => 0_i64,
                "server_tool_use" => obj!{"web_search_requests" => 0_i64}, "service_tier" => J::Null},
        };
        self.assistant_line(MAIN, message, None, true);
        true
    }

    // -- injected behaviours ------------------------------------------------

    /// The same tool call with the same input, 3..6 times in a row.
    fn run_loop(&mut self) {
        let kind = *self
            .rng
            .pick(&[ToolKind::Bash, ToolKind::Read, ToolKind::Grep]);
        let mut template = self.fresh_calls(&[kind]).remove(0);
        template.outcome = if kind == ToolKind::Bash {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        for i in 0..self.rng.int(LOOP_MIN_RUN, LOOP_MIN_RUN + 3) {
            let text = if i > 0 {
                Some(self.rng.pick(LOOP_TEXTS).to_string())
            } else {
                None
            };
            self.respond(MAIN, &mut [template.clone()], text, None, Results::After);
        }
    }

    /// A Task/Agent call whose subagent runs inline as isSidechain lines.
    fn dispatch_subagent(&mut self) {
        let mut call = self.unique(|s| s.dispatch_call(), &self.last_signature.clone());
        let text = self.maybe_text(STEP_TEXTS, 0.5);
        self.respond(
            MAIN,
            std::slice::from_mut(&mut call),
            text,
            None,
            Results::Deferred,
        );
        let prompt = call
            .input
            .get("prompt")
            .and_then(J::as_str)
            .unwrap_or("")
            .to_string();
        let subagent_type = call
            .input
            .get("subagent_type")
            .and_then(J::as_str)
            .unwrap_or("");
        let model = SUBAGENT_TYPES
            .iter()
            .find(|(name, _)| *name == subagent_type)
            .and_then(|(_, m)| *m)
            .unwrap_or(self.threads[MAIN].model);
        let agent_id = format!("{:08x}", self.rng.next_u64() >> 32);
        let pending = self.rng.int(8_000, 12_000) + prompt.len() as i64 / 4;
        self.threads[AGENT] = Thread {
            sidechain: true,
            model,
            agent_id: Some(agent_id.clone()),
            last_uuid: None,
            context_tokens: 0,
            pending_tokens: pending,
            cache_cold: false,
        };
        let started = self.clock;
        let replay = self.rng.chance(0.5);
        let (report, tool_uses) = self.run_sidechain(&prompt, replay);
        let text = J::Arr(vec![obj! {"type" => "text", "text" => report}]);
        call.result = text.clone();
        call.result_object = obj! {
            "status" => "completed",
            "prompt" => prompt,
            "agentId" => agent_id,
            "content" => text,
            "totalDurationMs" => self.clock - started,
            "totalTokens" => self.threads[AGENT].context_tokens,
            "totalToolUseCount" => tool_uses,
        };
        self.tool_result(MAIN, &call);
    }

    fn dispatch_call(&mut self) -> ToolCall {
        let description = self.text("{Verb} {noun} usages");
        let prompt = self.text_of(SUBAGENT_PROMPTS);
        let subagent_type = self.rng.pick(&SUBAGENT_TYPES).0;
        ToolCall {
            name: self.dispatch_tool.to_string(),
            input: obj! {"description" => description, "prompt" => prompt, "subagent_type" => subagent_type},
            result: J::Null,
            result_object: J::Null,
            error: "Agent failed: the subagent exited before completing".into(),
            duration_ms: (0, 0),
            denial_subject: None,
            outcome: Outcome::Ok,
            id: String::new(),
        }
    }

    /// Subagent lines. It may open by replaying the parent's response (same
    /// message.id and usage, new requestId, isSidechain), which ccusage and
    /// glassbox do not count twice.
    fn run_sidechain(&mut self, prompt: &str, replay: bool) -> (String, i64) {
        self.advance(200, 1_500);
        self.user_line(AGENT, prompt.to_string().into(), None, false, None);
        if replay {
            if let Some(last) = self.last_response.take() {
                let message = obj! {
                    "model" => last.model,
                    "id" => last.id,
                    "type" => "message",
                    "role" => "assistant",
                    "content" => vec![obj!{"type" => "text", "text" => prefix_chars(prompt, 200).to_string()}],
                    "stop_reason" => "tool_use",
                    "stop_sequence" => J::Null,
                    "usage" => J::Raw(last.usage),
                };
                let request = self.request_id();
                self.assistant_line(AGENT, message, Some(request), false);
                self.advance(200, 1_500);
            }
        }
        let steps = self.rng.int(2, 12).min(self.room() / 15_000).max(1);
        let weights: Vec<f64> = SIDECHAIN_TOOL_WEIGHTS.iter().map(|(_, w)| *w).collect();
        for _ in 0..steps {
            let kind = SIDECHAIN_TOOL_WEIGHTS[self.rng.weighted(&weights)].0;
            let mut call = self.make(kind);
            call.outcome = if self.rng.chance(P_ERROR) {
                Outcome::Error
            } else {
                Outcome::Ok
            };
            let text = self.maybe_text(STEP_TEXTS, 0.3);
            self.respond(AGENT, &mut [call], text, None, Results::After);
        }
        let mut found = Vec::with_capacity(3);
        for p in self.rng.sample(&self.project.files, 3) {
            let line = self.rng.int(1, 300);
            found.push(format!("- {}:{line}", self.abs(&p)));
        }
        let report = self.text("Found 3 relevant places for `{ident}`:\n") + &found.join("\n");
        self.respond(AGENT, &mut [], Some(report.clone()), None, Results::After);
        (report, steps)
    }

    // -- tool calls -----------------------------------------------------------

    fn make(&mut self, kind: ToolKind) -> ToolCall {
        match kind {
            ToolKind::Read => self.read(),
            ToolKind::Bash => self.bash(),
            ToolKind::Edit => self.edit(),
            ToolKind::Grep => self.grep(),
            ToolKind::Glob => self.glob(),
            ToolKind::Write => self.write(),
            ToolKind::TodoWrite => self.todo_write(),
            ToolKind::WebFetch => self.web_fetch(),
            ToolKind::Mcp => self.mcp(),
            ToolKind::Skill => self.skill(),
        }
    }

    fn call(
        name: impl Into<String>,
        input: J,
        result: J,
        result_object: J,
        error: String,
        duration_ms: (i64, i64),
        denial_subject: Option<String>,
    ) -> ToolCall {
        ToolCall {
            name: name.into(),
            input,
            result,
            result_object,
            error,
            duration_ms,
            denial_subject,
            outcome: Outcome::Ok,
            id: String::new(),
        }
    }

    fn pick_file(&mut self) -> String {
        let mut candidates = self.rng.sample(&self.project.files, 3);
        if self.room() < 40_000 {
            // Small sessions read small files.
            let lang = self.project.lang;
            candidates.sort_by_key(|p| self.pools.file_lines(lang, p).len());
        }
        candidates.swap_remove(0)
    }

    fn bash(&mut self) -> ToolCall {
        let lang = self.project.lang;
        let n = bash_commands(lang).len() + BASH_ANY.len();
        let i = self.rng.below(n);
        let (command, description, out) = bash_commands(lang)
            .get(i)
            .copied()
            .unwrap_or_else(|| BASH_ANY[i - bash_commands(lang).len()]);
        let command = self.text(command);
        let description = self.text(description);
        let lines = (self.rng.int(1, 160)).min((self.room() / 300).max(2)) as usize;
        let (stdout, failure, slow) = match out {
            BashOut::Ls => {
                let dir = command.split_whitespace().last().unwrap_or(".").to_string();
                (
                    self.listing(),
                    format!("ls: {dir}: No such file or directory"),
                    false,
                )
            }
            BashOut::Log(kind) => (
                self.pools.log(kind, &mut self.rng, lines),
                self.pools.log(kind, &mut self.rng, (lines / 3).max(2)),
                kind.slow(),
            ),
        };
        let code = *self.rng.pick(&[1, 1, 2, 127]);
        let shown = if stdout.is_empty() {
            "(Bash completed with no output)".to_string()
        } else {
            stdout.clone()
        };
        Self::call(
            "Bash",
            obj! {"command" => command, "description" => description},
            shown.into(),
            obj! {"stdout" => stdout, "stderr" => "", "interrupted" => false, "isImage" => false},
            format!("Exit code {code}\n{failure}"),
            if slow { (300, 90_000) } else { (40, 2_000) },
            Some("use Bash".into()),
        )
    }

    fn listing(&mut self) -> String {
        let entries = self.rng.sample(&self.project.files, 12);
        let mut out = Vec::with_capacity(entries.len());
        for p in entries {
            let size = self.rng.int(200, 40_000);
            let day = self.rng.int(1, 28);
            let (h, m) = (self.rng.int(8, 19), self.rng.int(0, 59));
            out.push(format!(
                "-rw-r--r--  1 {}  staff  {size:>6} {} {day:>2} {h:02}:{m:02} {p}",
                self.user.first, self.plan.month
            ));
        }
        out.join("\n")
    }

    fn read(&mut self) -> ToolCall {
        let rel = self.pick_file();
        let path = self.abs(&rel);
        let all = self.pools.file_lines(self.project.lang, &rel);
        let limit = (self.room() / 120).max(10) as usize;
        let mut input = obj! {"file_path" => &path};
        let (offset, lines) = if all.len() > limit {
            let offset = self.rng.below(all.len() - limit);
            input.push("offset", offset + 1);
            input.push("limit", limit);
            (offset, &all[offset..offset + limit])
        } else {
            (0, all)
        };
        let content = lines.join("\n");
        let mut shown = numbered(lines, offset + 1);
        if self.rng.chance(0.3) {
            shown.push_str(
                "\n\n<system-reminder>\nWhenever you read a file, you should consider whether it \
                 would be considered malware.\n</system-reminder>\n",
            );
        }
        let n = lines.len();
        Self::call(
            "Read",
            input,
            shown.into(),
            obj! {"type" => "text", "file" => obj!{
            "filePath" => path, "content" => content, "numLines" => n,
            "startLine" => offset + 1, "totalLines" => n + offset}},
            "<tool_use_error>File does not exist.</tool_use_error>".into(),
            (5, 300),
            None,
        )
    }

    fn edit(&mut self) -> ToolCall {
        let rel = self.pick_file();
        let path = self.abs(&rel);
        let lang = self.project.lang;
        let lines = self.pools.file_lines(lang, &rel);
        let candidates: Vec<usize> = (0..lines.len() - 1)
            .filter(|&i| !lines[i].trim().is_empty())
            .collect();
        let at = if candidates.is_empty() {
            0
        } else {
            *self.rng.pick(&candidates)
        };
        let old = lines[at..at + 2].join("\n");
        let pool = &self.pools.code[lang.index()];
        let new = format!("{old}\n{}", pool[self.rng.below(pool.len())]);
        let from = at.saturating_sub(3);
        let snippet = numbered(&lines[from..(at + 6).min(lines.len())], from + 1);
        let patch: Vec<J> = old
            .split('\n')
            .map(|l| J::from(format!("-{l}")))
            .chain(new.split('\n').map(|l| J::from(format!("+{l}"))))
            .collect();
        Self::call(
            "Edit",
            obj! {"file_path" => &path, "old_string" => &old, "new_string" => &new},
            format!(
                "The file {path} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n{snippet}"
            )
            .into(),
            obj! {
                "filePath" => &path, "oldString" => &old, "newString" => &new,
                "originalFile" => lines.join("\n"),
                "structuredPatch" => vec![obj!{"oldStart" => at + 1, "oldLines" => 2_i64,
                    "newStart" => at + 1, "newLines" => 3_i64, "lines" => patch}],
                "userModified" => false, "replaceAll" => false,
            },
            format!("<tool_use_error>String to replace not found in file.\nString: {old}</tool_use_error>"),
            (20, 400),
            Some(format!("write to {path}")),
        )
    }

    fn write(&mut self) -> ToolCall {
        let file = self.rng.pick(&self.project.files).clone();
        let base = file
            .rsplit_once('/')
            .map_or(".", |(dir, _)| dir)
            .to_string();
        let noun = self.rng.pick(NOUNS);
        let verb = self.rng.pick(VERBS);
        let path = self.abs(&format!("{base}/{noun}_{verb}{}", self.project.lang.ext()));
        let pool = &self.pools.code[self.project.lang.index()];
        let start = self.rng.below(2000);
        let len = (self.rng.int(10, 150)).min((self.room() / 200).max(5)) as usize;
        let content = pool[start..start + len].join("\n");
        Self::call(
            "Write",
            obj! {"file_path" => &path, "content" => &content},
            format!("File created successfully at: {path}").into(),
            obj! {"type" => "create", "filePath" => &path, "content" => content, "structuredPatch" => Vec::<J>::new()},
            "<tool_use_error>File has not been read yet. Read it first before writing to it.</tool_use_error>".into(),
            (20, 300),
            Some(format!("write to {path}")),
        )
    }

    fn grep(&mut self) -> ToolCall {
        let pattern = self.rng.pick(&self.vocab.idents).clone();
        let k = self.rng.int(0, 8) as usize;
        let hits: Vec<String> = self
            .rng
            .sample(&self.project.files, k)
            .iter()
            .map(|h| self.abs(h))
            .collect();
        let dir = *self.rng.pick(&["src", "tests", "internal", "."]);
        let result = if hits.is_empty() {
            "No files found".to_string()
        } else {
            format!("Found {} files\n{}", hits.len(), hits.join("\n"))
        };
        let n = hits.len();
        Self::call(
            "Grep",
            obj! {"pattern" => pattern, "path" => self.abs(dir)},
            result.into(),
            obj! {"mode" => "files_with_matches",
            "filenames" => hits.into_iter().map(J::from).collect::<Vec<J>>(), "numFiles" => n},
            "<tool_use_error>Path does not exist.</tool_use_error>".into(),
            (30, 900),
            None,
        )
    }

    fn glob(&mut self) -> ToolCall {
        let pattern = format!(
            "{}{}",
            self.rng
                .pick(&["**/*", "src/**/*", "tests/**/*", "**/*test*"]),
            self.project.lang.ext()
        );
        let k = self.rng.int(1, 15) as usize;
        let hits: Vec<String> = self
            .rng
            .sample(&self.project.files, k)
            .iter()
            .map(|h| self.abs(h))
            .collect();
        let n = hits.len();
        let duration = self.rng.int(3, 90);
        Self::call(
            "Glob",
            obj! {"pattern" => pattern},
            hits.join("\n").into(),
            obj! {"filenames" => hits.into_iter().map(J::from).collect::<Vec<J>>(),
            "durationMs" => duration, "numFiles" => n, "truncated" => false},
            "<tool_use_error>Invalid glob pattern.</tool_use_error>".into(),
            (10, 200),
            None,
        )
    }

    fn web_fetch(&mut self) -> ToolCall {
        let url = self.text_of(WEB_URLS);
        let n = self.rng.int(3, 12);
        let parts: Vec<String> = (0..n).map(|_| self.text_of(THOUGHTS)).collect();
        let summary = parts.join(" ");
        let prompt = self.text("How does {verb} work for {noun}s?");
        let bytes = self.rng.int(4_000, 200_000);
        let duration = self.rng.int(400, 9_000);
        Self::call(
            "WebFetch",
            obj! {"url" => &url, "prompt" => prompt},
            J::from(&summary),
            obj! {"bytes" => bytes, "code" => 200_i64, "codeText" => "OK", "result" => summary,
            "durationMs" => duration, "url" => url},
            "Request failed with status code 404".into(),
            (800, 12_000),
            Some("use WebFetch".into()),
        )
    }

    fn todo_write(&mut self) -> ToolCall {
        let k = self.rng.int(2, 4) as usize;
        let todos: Vec<J> = self
            .rng
            .sample(FINAL_BULLETS, k)
            .into_iter()
            .map(|t| {
                let content = self.text(t);
                let status = *self.rng.pick(&["pending", "in_progress", "completed"]);
                let active = self.text("{Verb}ing the {noun}");
                obj! {"content" => content, "status" => status, "activeForm" => active}
            })
            .collect();
        Self::call(
            "TodoWrite",
            obj! {"todos" => todos.clone()},
            "Todos have been modified successfully. Ensure that you continue to use the todo list to \
             track your progress. Please proceed with the current tasks if applicable"
                .into(),
            obj! {"oldTodos" => Vec::<J>::new(), "newTodos" => todos},
            "<tool_use_error>InputValidationError: todos is invalid</tool_use_error>".into(),
            (5, 60),
            None,
        )
    }

    fn skill(&mut self) -> ToolCall {
        let skills = if self.user.skills.is_empty() {
            SKILLS
        } else {
            &self.user.skills[..]
        };
        let name = *self.rng.pick(skills);
        Self::call(
            "Skill",
            obj! {"skill" => name},
            format!("Launching skill: {name}").into(),
            obj! {"success" => true, "commandName" => name},
            format!("<tool_use_error>Unknown skill: {name}</tool_use_error>"),
            (20, 200),
            None,
        )
    }

    fn mcp(&mut self) -> ToolCall {
        let servers = if self.user.mcp_servers.is_empty() {
            MCP_SERVERS
        } else {
            &self.user.mcp_servers[..]
        };
        let server = *self.rng.pick(servers);
        let tool = *self.rng.pick(mcp_tools(server));
        let name = format!("mcp__{server}__{tool}");
        // Two of these parameters, as the tools take different ones.
        let title = self.text("{Verb} {adj} {noun}s");
        let query = self.text("{noun} {adj}");
        let limit = self.rng.int(5, 50);
        let mut params: Vec<(&'static str, J)> = vec![
            ("limit", limit.into()),
            ("owner", "acme".into()),
            ("query", query.into()),
            ("repo", self.project.name.into()),
            ("title", title.into()),
        ];
        let first = params.swap_remove(self.rng.below(params.len()));
        let second = params.swap_remove(self.rng.below(params.len()));
        let input = J::Obj(vec![(first.0.into(), first.1), (second.0.into(), second.1)]);
        let n = self.rng.int(1, 6);
        let items: Vec<String> = (0..n).map(|_| self.text("{sentence}")).collect();
        let payload = serde_json::json!({
            "id": self.rng.int(100, 99_999),
            "status": *self.rng.pick(&["open", "closed", "ok"]),
            "items": items,
        });
        let pretty = serde_json::to_string_pretty(&payload).unwrap_or_default();
        let text = J::Arr(vec![obj! {"type" => "text", "text" => pretty}]);
        Self::call(
            name.clone(),
            input,
            text.clone(),
            text,
            format!("MCP error -32603: {server} request failed ({tool})"),
            (300, 6_000),
            Some(format!("use {name}")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_math_matches_std_closely() {
        for x in [-3.0, -0.5, 0.0, 0.1, 1.0, 2.5, 7.0, 17.3] {
            let (a, b) = (exp_det(x), f64::exp(x));
            assert!((a - b).abs() <= b * 1e-14, "exp({x}): {a} vs {b}");
        }
        for x in [0.001, 0.5, 1.0, 2.0, 3.0, 1234.5, 4.8e6] {
            let (a, b) = (ln_det(x), f64::ln(x));
            assert!(
                (a - b).abs() <= 1e-13 * b.abs().max(1.0),
                "ln({x}): {a} vs {b}"
            );
        }
        assert!((quantile(0.5) - 95_000.0).abs() < 1.0);
    }

    #[test]
    fn strings_are_escaped_like_json() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n\t\u{1}\u{1b}é😀");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001bé😀\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\t\u{1}\u{1b}é😀");
    }

    #[test]
    fn fill_keeps_unknown_braces() {
        let mut rng = Rng::new(7);
        // As gen_sessions.py's regex: `${{arg}}` keeps the outer braces,
        // `{ {Cls} }` keeps the spaced ones, unknown slots stay.
        let s = fill("`${{arg}}` { {Cls} } {nope}", &mut rng, None);
        let (arg, rest) = s["`${".len()..].split_once("}` { ").unwrap();
        let cls = rest.strip_suffix(" } {nope}").unwrap();
        assert!(NOUNS.contains(&arg), "{s}");
        assert!(SUFFIXES.iter().any(|x| cls.ends_with(x)), "{s}");
    }

    #[test]
    fn uuids_are_version_4() {
        let mut rng = Rng::new(1);
        let u = rng.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
