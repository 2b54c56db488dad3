package dev.edgekit.bench.core;

import org.json.JSONException;
import org.json.JSONObject;

/** Memory of the app process at one moment, in KiB; PSS figures are null where unknown. */
public final class MemorySnapshot {
    public final long vmRssKb;
    public final long vmHwmKb;
    public final Long pssTotalKb;
    public final Long pssGraphicsKb;

    public MemorySnapshot(long vmRssKb, long vmHwmKb, Long pssTotalKb, Long pssGraphicsKb) {
        this.vmRssKb = vmRssKb;
        this.vmHwmKb = vmHwmKb;
        this.pssTotalKb = pssTotalKb;
        this.pssGraphicsKb = pssGraphicsKb;
    }

    JSONObject toJson() throws JSONException {
        return new JSONObject()
                .put("vm_rss_kb", vmRssKb)
                .put("vm_hwm_kb", vmHwmKb)
                .put("pss_total_kb", pssTotalKb == null ? JSONObject.NULL : pssTotalKb)
                .put("pss_graphics_kb", pssGraphicsKb == null ? JSONObject.NULL : pssGraphicsKb);
    }

    static MemorySnapshot fromJson(Object value, String where) throws ProtocolException {
        JSONObject o = Json.object(value, where);
        Long pss = o.has("pss_total_kb") && !o.isNull("pss_total_kb") ? Json.integer(o, "pss_total_kb", where) : null;
        Long gfx = o.has("pss_graphics_kb") && !o.isNull("pss_graphics_kb")
                ? Json.integer(o, "pss_graphics_kb", where) : null;
        return new MemorySnapshot(Json.integer(o, "vm_rss_kb", where), Json.integer(o, "vm_hwm_kb", where), pss, gfx);
    }
}
