#!/usr/bin/env python3
"""Writes bench/routing/labelled.jsonl: requests labelled `simple` (a small model answers them
well) or `strong` (they need a strong model), for measuring complexity routing.

Source: hand-written templates in this file (Sluice team, 2026), each filled from a few slot
values. Every line carries its template as `group`, so that `sluice eval routing` can hold out
whole templates (the nearest-example vote never sees a paraphrase of the request it scores).
The labels follow one rule: `strong` when a good answer needs multi-step reasoning, code that
must be correct, a proof or derivation, or the weighing of several constraints; `simple` when
it is a lookup, a short rewrite, a conversion or small talk.
"""
import itertools, json, random, sys

SIMPLE = {
    "capital": ("What is the capital of {x}?", ["France", "Japan", "Canada", "Kenya", "Peru", "Norway", "Vietnam", "Egypt"]),
    "translate": ("Translate '{x}' into Spanish.", ["good morning", "thank you very much", "where is the station", "I am hungry", "see you tomorrow", "how much is this", "happy birthday", "the bill, please"]),
    "define": ("What does the word '{x}' mean?", ["ephemeral", "ubiquitous", "candid", "frugal", "serendipity", "meticulous", "benevolent", "pragmatic"]),
    "convert": ("Convert {x} to kilometres.", ["10 miles", "26.2 miles", "3 miles", "100 miles", "half a mile", "50 miles", "7 miles", "1 mile"]),
    "greeting": ("{x}", ["Hi there!", "Thanks, that helps.", "Good morning!", "You're great, thank you.", "Hello, how are you?", "Okay, got it.", "Cool, thanks!", "Bye for now."]),
    "synonym": ("Give me a synonym for '{x}'.", ["happy", "fast", "big", "smart", "tired", "angry", "quiet", "strong"]),
    "fact": ("Who wrote {x}?", ["Pride and Prejudice", "Hamlet", "1984", "Don Quixote", "The Odyssey", "War and Peace", "Moby-Dick", "Frankenstein"]),
    "arith": ("What is {x}?", ["12 plus 30", "7 times 8", "100 divided by 4", "15 minus 9", "9 squared", "half of 64", "3 times 11", "250 plus 250"]),
    "spell": ("How do you spell {x}?", ["necessary", "accommodate", "rhythm", "definitely", "separate", "occasionally", "embarrass", "recommend"]),
    "rewrite": ("Make this sentence more polite: '{x}'", ["Send me the report.", "Fix this now.", "Call me back.", "I need the file today.", "Stop emailing me.", "Answer my question.", "Move your car.", "Give me a refund."]),
    "summary1": ("Summarise in one sentence: {x}", ["The meeting moved to Tuesday at 3pm in room B.", "Our store closes early on public holidays.", "The package was delivered to the front desk.", "Sales rose 5% in March compared with February.", "The library now lends e-readers for two weeks.", "The train to Leeds is delayed by 20 minutes.", "Lunch will be provided at the workshop.", "The app update fixes a login bug."]),
    "when": ("When did {x} happen?", ["the first Moon landing", "the fall of the Berlin Wall", "the French Revolution", "the invention of the telephone", "the end of World War II", "the first Olympic Games of the modern era", "the signing of the Magna Carta", "the launch of the first iPhone"]),
    "list": ("List three {x}.", ["primary colours", "planets near the Sun", "European rivers", "citrus fruits", "string instruments", "types of clouds", "Shakespeare comedies", "programming languages"]),
    "email": ("Write a one-line reply saying {x}.", ["I will attend the meeting", "I received the invoice", "I'm out of office until Monday", "the document looks fine", "thanks for the update", "I'll call after lunch", "the delivery arrived", "yes, Friday works"]),
    "timezone": ("What time is it in {x} when it is noon in London?", ["New York", "Tokyo", "Sydney", "Berlin", "Dubai", "Los Angeles", "Mumbai", "Singapore"]),
    "emoji": ("Suggest an emoji for {x}.", ["a birthday", "good news", "rain", "coffee", "a job well done", "travel", "a cat", "music"]),
    "climate": ("Is it usually cold in {x} in January?", ["Oslo", "Cairo", "Chicago", "Lisbon", "Moscow", "Bangkok", "Toronto", "Madrid"]),
    "acronym": ("What does {x} stand for?", ["NASA", "HTML", "CPU", "UNESCO", "GDP", "PDF", "USB", "FAQ"]),
    "typos": ("Please fix the typos in this paragraph and change nothing else: '{x}'", ["Our ofice will be closed on Monday for the public holliday. Please send any urgent requets to the support mailbox and we will answer them on Tuesday morning.", "The new cofee machine is on the second floor next to the meeting room. Please clean up after yourselfs and report any problems to facilites.", "Thank you for you're order. It will be shiped within three buisness days and you will recieve a tracking number by email.", "The parking lot will be repaved next weak. Please park on the street or use public transportation untill the work is finished.", "Remember to submit you timesheets by Friday so that payroll can proccess them on time for the end of the month.", "The libary will extend its opening hours during exam season, staying open untill midnight from Monday to Thursday.", "Our team won the regional competiton last weekend. Congratulations to everyone who particpated and thanks to the organisers.", "Please note that the elevators in building C are under maintainance and will be out of service for most of the afternoon."]),
    "boil": ("How long should I boil {x}?", ["an egg", "pasta", "rice", "potatoes", "broccoli", "corn on the cob", "lentils", "quinoa"]),
}

STRONG = {
    "implement": ("Implement {x} in Python with type hints, handle edge cases, and write unit tests that cover them.", ["a thread-safe LRU cache with O(1) get and put", "an interval tree supporting insert, delete and overlap queries", "a rate limiter using the token bucket algorithm shared across threads", "a parser for arithmetic expressions with operator precedence and parentheses", "Dijkstra's shortest path on a graph with a binary heap", "a consistent-hashing ring with virtual nodes", "a trie with prefix search and deletion", "a bounded blocking queue with timeouts"]),
    "debug": ("This {x} works in tests but fails under load in production. Explain the likely root causes, how to confirm each one, and propose a fix.", ["Go service that leaks goroutines", "Java service that runs out of heap after a day", "Node.js API whose p99 latency spikes every few minutes", "Python worker pool that deadlocks occasionally", "PostgreSQL query that suddenly takes 30 seconds", "Kubernetes deployment that restarts with OOMKilled", "Swift server whose memory grows with every request", "Redis-backed job queue that loses jobs"]),
    "proof": ("Prove that {x}, stating every step.", ["the square root of 2 is irrational", "there are infinitely many primes", "the sum of the first n odd numbers is n squared", "every tree with n nodes has n-1 edges", "a bipartite graph has no odd cycle", "the harmonic series diverges", "the product of two consecutive integers is even", "any connected graph has a spanning tree"]),
    "design": ("Design {x}. Cover the data model, the APIs, scaling to 10x traffic, failure modes and the trade-offs you would make.", ["a URL shortener serving 50,000 requests per second", "a multi-tenant notification service with retries and quiet hours", "a collaborative text editor with offline edits", "a payments ledger that never double-charges", "a feature-flag system with gradual rollouts", "a search index for 100 million product listings", "a chat system with end-to-end encryption and message history", "a metrics pipeline with downsampling and alerting"]),
    "math": ("{x} Show the derivation and check the result.", ["A fair die is rolled until a six appears; what is the expected number of rolls and its variance?", "Find all real solutions of x^4 - 5x^2 + 4 = 0 and explain each step.", "Compute the integral of x times e^(2x) from 0 to 1.", "Two trains leave 300 km apart at 80 and 70 km/h toward each other, with a bird flying 100 km/h between them; how far does the bird fly?", "Find the eigenvalues and eigenvectors of the matrix [[2,1],[1,2]].", "How many ways can 8 rooks be placed on a chessboard so that none attack each other, and why?", "Estimate the probability that two people in a room of 30 share a birthday.", "Solve the recurrence T(n) = 2T(n/2) + n log n."]),
    "analysis": ("Compare {x} for a mid-sized company, weigh the risks and costs of each, and recommend one with a migration plan in phases.", ["a monolith versus microservices", "self-hosting PostgreSQL versus a managed database", "Kafka versus a simple job queue", "GraphQL versus REST for a public API", "building an in-house LLM gateway versus buying one", "a data lake versus a data warehouse", "server-side rendering versus a single-page app", "multi-region active-active versus active-passive"]),
    "refactor": ("Refactor this function so that it is testable and handles errors properly, then explain every change:\n```\n{x}\n```", ["def load(p):\n    d = json.load(open(p))\n    return [x['id'] for x in d if x['ok'] == True]", "function pay(u, amt) { db.query('UPDATE acct SET bal = bal - ' + amt + ' WHERE id = ' + u); return true }", "func fetch(url: String) -> Data { return try! Data(contentsOf: URL(string: url)!) }", "public int avg(int[] a) { int s = 0; for (int i = 0; i <= a.length; i++) s += a[i]; return s / a.length; }", "async def sync_all(items):\n    for i in items:\n        await save(i)\n    return 'done'", "SELECT * FROM orders o, customers c WHERE o.cid = c.id AND o.total > 100 ORDER BY 1", "def retry(f):\n    while True:\n        try: return f()\n        except: pass", "let total = 0; items.forEach(async (i) => { total += await price(i) }); return total"]),
    "plan": ("I need {x}. First list the constraints, then give a step-by-step plan, and finally say what could go wrong at each step and how to avoid it. Keep it under 500 words and cite your assumptions.", ["to migrate 2 TB of data between clouds with under one hour of downtime", "to launch a product in three countries with different privacy laws", "to cut our cloud bill by 40% without hurting latency", "to rotate every secret in a 200-service system without an outage", "to move a team of 12 from Jenkins to GitHub Actions in a quarter", "to add SSO to a legacy app used by 5,000 employees", "to organise a 300-person conference on a fixed budget", "to reduce churn for a subscription product losing 8% a month"]),
    "legal": ("Analyse {x}: what are the competing arguments, which facts would change the outcome, and what would you advise?", ["whether a non-compete clause signed in California is enforceable for a remote employee in Texas", "liability when an autonomous delivery robot injures a pedestrian", "whether scraping a public website breaches its terms of service", "the GDPR implications of training a model on customer support transcripts", "ownership of code written by a contractor without an IP assignment", "a landlord withholding a deposit for normal wear and tear", "a software licence that forbids benchmarking", "whether an email exchange formed a binding contract"]),
    "science": ("Explain {x}, including the underlying mechanism, a worked numerical example, and common misconceptions.", ["why the sky is blue but sunsets are red", "how mRNA vaccines produce immunity", "why adding salt raises the boiling point of water", "how public-key cryptography lets strangers agree on a secret", "why gradient descent can get stuck and how momentum helps", "how a transistor amplifies a signal", "why the Monty Hall answer is to switch", "how CRISPR edits a specific gene"]),
    "short_hard": ("{x}", ["Is P equal to NP? Argue both sides rigorously.", "Why does quicksort take O(n log n) time on average? Prove it.", "Prove Fermat's little theorem.", "State Gödel's first incompleteness theorem precisely and sketch its proof.", "Derive the Black-Scholes equation.", "Why is the halting problem undecidable? Give the proof.", "Explain how Raft keeps a consistent log through a network partition.", "Derive backpropagation for a two-layer network with softmax output."]),
    "review": ("Review this architecture decision and rank the risks you see by impact: {x}", ["we will store all user sessions in a single Redis instance without persistence", "every microservice will share one PostgreSQL database and schema", "we will run database migrations automatically on every deploy from each replica", "payments will be retried by the client until they succeed", "we will cache authorisation decisions for 24 hours", "logs will contain full request bodies for debugging", "the mobile app will talk directly to the database through a REST layer with no auth", "we will use UUIDv4 primary keys on a 2-billion-row table"]),
    "forecast": ("Given monthly revenue of {x} (thousands), estimate the trend, forecast the next quarter with a confidence interval, and explain your method.", ["120, 125, 131, 128, 140, 151", "80, 95, 70, 100, 85, 110", "300, 290, 285, 270, 260, 262", "50, 52, 60, 75, 95, 120", "200, 210, 190, 220, 230, 205", "10, 12, 11, 13, 30, 32", "400, 380, 420, 410, 450, 440", "90, 90, 91, 89, 90, 92"]),
    "regex": ("Write a regular expression that {x}, explain each part, and give three strings it must reject.", ["matches valid IPv4 addresses", "matches ISO 8601 dates with optional time zones", "matches balanced quoted strings with escaped quotes", "validates UK postcodes", "matches semantic version numbers with pre-release tags", "extracts domain names from URLs", "matches hexadecimal colour codes of 3 or 6 digits", "matches floating-point numbers in scientific notation"]),
    "proptest": ("Write property-based tests for {x} and explain which invariants they check and why they matter.", ["a JSON serializer and parser", "a sorting function", "a bank transfer function", "a date-range merging function", "a URL normaliser", "a run-length encoder", "a priority queue", "a CRDT counter"]),
    "threat": ("Threat-model {x}: list the assets, the attackers, the attack paths and the mitigations, in priority order.", ["a password-reset flow", "an LLM chatbot with access to customer records", "a CI pipeline that deploys to production", "a mobile banking app", "a webhook receiver", "a file-upload service", "an internal admin dashboard", "a single sign-on integration"]),
    "concurrency": ("Find the race condition in this {x}, explain the interleaving that triggers it, and rewrite it correctly:\n```\n{y}\n```", []),
    "sql": ("Write a SQL query that {x}, explain how it works, and say which indexes it needs.", ["finds each customer's second most recent order", "computes a 7-day rolling average of daily revenue", "lists products never ordered together with product 42", "returns the top 3 salaries per department including ties", "detects gaps in a sequence of invoice numbers", "finds users who logged in on 5 consecutive days", "pivots monthly sales into one column per month", "deduplicates rows keeping the newest per email"]),
}
CONCURRENCY = [
    ("Swift code", "var count = 0\nDispatchQueue.concurrentPerform(iterations: 1000) { _ in count += 1 }"),
    ("Go code", "for i := 0; i < 10; i++ { go func() { results = append(results, i) }() }"),
    ("Java code", "if (!map.containsKey(k)) { map.put(k, compute(k)); }"),
    ("Python code", "if not os.path.exists(p):\n    with open(p, 'w') as f: f.write(data)"),
    ("C code", "if (buf == NULL) { buf = malloc(N); init(buf); }"),
    ("Rust code", "let v = Arc::new(Mutex::new(0)); let x = *v.lock().unwrap(); *v.lock().unwrap() = x + 1;"),
    ("JavaScript code", "let cached; async function get() { if (!cached) cached = await load(); return cached; }"),
    ("Kotlin code", "var balance = 100\nfun withdraw(a: Int) { if (balance >= a) { Thread.sleep(1); balance -= a } }"),
]

def main(path):
    rows = []
    for label, table in (("simple", SIMPLE), ("strong", STRONG)):
        for group, (template, fills) in table.items():
            if group == "concurrency":
                for lang, code in CONCURRENCY:
                    rows.append({"text": template.format(x=lang, y=code), "label": label, "group": group})
                continue
            for x in fills:
                rows.append({"text": template.format(x=x), "label": label, "group": group})
    random.Random(7).shuffle(rows)
    with open(path, "w") as f:
        for r in rows:
            r["source"] = "sluice-templates-2026"
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {l: sum(1 for r in rows if r["label"] == l) for l in ("simple", "strong")}
    print(f"{len(rows)} requests ({counts['simple']} simple, {counts['strong']} strong) in {len({r['group'] for r in rows})} templates -> {path}")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/routing/labelled.jsonl")
