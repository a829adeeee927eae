"""Files and vector stores through the official openai SDK, unchanged: upload, poll, search;
then a restart (the index is rebuilt from the database) and a flow on the local model that
answers from the store with citations."""
import json
import urllib.request

from openai import OpenAI

from conftest import CONFIG, Sluice

HANDBOOK = """# Handbook

## Refunds

Refunds are paid within 14 days of the return reaching our warehouse.

## Shipping

Orders ship from Rotterdam on weekdays. Weekend orders ship on Monday.
"""


def pdf(text):
    """A one-page PDF, written by hand (catalog, pages, page, font, content stream)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = "%PDF-1.4\n", []
    for i, body in enumerate(objects):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n{body}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode()


FLOW = """
  handbook:
    model: gemma-3-270m
    input: {{ type: object, required: [question], properties: {{ question: {{ type: string }} }} }}
    messages:
      - {{ role: user, content: "Passages:{{{{#passages}}}}\\n[{{{{n}}}}] {{{{text}}}}{{{{/passages}}}}\\n\\nQuestion: {{{{question}}}}\\nAnswer with one sentence copied from the passages and end it with its number in brackets, like [1]." }}
    params: {{ max_tokens: 60, temperature: 0 }}
    retrieval: {{ vector_store: {store}, top_k: 2, min_score: 0.2 }}
    grounding: {{ action: flag }}
"""


def test_files_vector_stores_search_and_a_flow_with_citations(tmp_path):
    server = Sluice(tmp_path)
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
        (tmp_path / "handbook.md").write_text(HANDBOOK)
        uploaded = client.files.create(file=open(tmp_path / "handbook.md", "rb"), purpose="assistants")
        assert uploaded.filename == "handbook.md" and uploaded.bytes == len(HANDBOOK.encode())
        assert client.files.content(uploaded.id).read() == HANDBOOK.encode()

        store = client.vector_stores.create(name="handbook", file_ids=[uploaded.id], metadata={"owner": "support"})
        assert store.file_counts.total == 1
        (tmp_path / "carriers.pdf").write_bytes(pdf("Parcels are carried by PostNL in the Netherlands."))
        added = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=open(tmp_path / "carriers.pdf", "rb"))
        assert added.status == "completed", added.last_error
        first = client.vector_stores.files.poll(uploaded.id, vector_store_id=store.id)
        assert first.status == "completed"
        (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n")
        broken = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=open(tmp_path / "photo.png", "rb"))
        assert broken.status == "failed" and broken.last_error.code == "unsupported_file" and ".png" in broken.last_error.message

        page = client.vector_stores.search(vector_store_id=store.id, query="How long until I get my money back?", max_num_results=2)
        hit = page.data[0]
        assert hit.file_id == uploaded.id and hit.filename == "handbook.md", page
        assert "14 days" in hit.content[0].text and 0 < hit.score <= 1
        carriers = client.vector_stores.search(vector_store_id=store.id, query="Which company carries parcels?", max_num_results=1)
        assert carriers.data[0].file_id == added.id and "PostNL" in carriers.data[0].content[0].text
        filtered = client.vector_stores.search(
            vector_store_id=store.id, query="refunds", filters={"type": "eq", "key": "lang", "value": "fr"})
        assert filtered.data == []
        assert client.vector_stores.retrieve(store.id).file_counts.completed == 2
        store_id, key = store.id, server.admin_key
    finally:
        server.stop()

    # A new process on the same database, with a flow that names the store.
    server = Sluice(tmp_path, config=CONFIG + FLOW.replace("{store}", store_id), admin_key=key)
    try:
        client = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
        again = client.vector_stores.search(vector_store_id=store_id, query="When do weekend orders ship?", max_num_results=1)
        assert "Monday" in again.data[0].content[0].text
        request = urllib.request.Request(
            server.base_url + "/flows/handbook/run", method="POST",
            data=json.dumps({"input": {"question": "How many days until a refund is paid?"}}).encode(),
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            run = json.loads(response.read())
        assert run["object"] == "flow.run" and isinstance(run["output"], str) and run["output"], run
        assert "grounding" in run and 0 <= run["grounding"]["score"] <= 1, run
        cited = {c["file_id"] for c in run["citations"]}
        assert cited and cited <= {uploaded.id, added.id}, run
        assert all(c["quote"] and c["filename"] in ("handbook.md", "carriers.pdf") for c in run["citations"]), run
        # Deleting the file takes it out of search.
        client.files.delete(uploaded.id)
        after = client.vector_stores.search(vector_store_id=store_id, query="refund days", max_num_results=5)
        assert all(d.file_id != uploaded.id for d in after.data)
    finally:
        server.stop()
