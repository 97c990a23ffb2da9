/* Report output. The SVG is written by hand: three panels (throughput, p50, p99) of grouped
 * bars, one group per parameter value (rate, consumer count, ...) and one colour per system;
 * latency panels use a log scale so 50 µs and 50 ms fit on one plot. */
#include "bench/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rc_report_add(rc_report_t *r, const rc_row_t *row)
{
    if (r->count == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        rc_row_t *p = realloc(r->rows, (size_t)cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        r->rows = p;
        r->cap = cap;
    }
    r->rows[r->count++] = *row;
    return 0;
}

void rc_report_free(rc_report_t *r)
{
    free(r->rows);
    memset(r, 0, sizeof(*r));
}

static const rc_row_t *ringcast_row(const rc_report_t *r, const rc_row_t *row)
{
    for (int i = 0; i < r->count; i++) {
        const rc_row_t *x = &r->rows[i];
        if (!x->skipped && strncmp(x->system, "ringcast", 8) == 0 &&
            strcmp(x->scenario, row->scenario) == 0 && strcmp(x->params, row->params) == 0)
            return x;
    }
    return NULL;
}

static void fmt_num(char *buf, size_t cap, double v)
{
    if (v < 0)
        snprintf(buf, cap, "-");
    else if (v >= 1e6)
        snprintf(buf, cap, "%.2f M", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.0f k", v / 1e3);
    else if (v >= 100)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%.1f", v);
}

void rc_report_cpu_pct(const rc_row_t *x, double *load, double *server, double *workers,
                       double *consumers)
{
    double w = x->wall_s;
    *load = w > 0 ? 100 * x->client_cpu_s / w : -1;
    *server = w > 0 && x->cpu_s >= 0 ? 100 * x->cpu_s / w : -1;
    *workers = w > 0 ? 100 * x->worker_cpu_s / w : -1;
    *consumers = w > 0 ? 100 * x->consumer_cpu_s / w : -1;
}

const char *rc_report_saturated(const rc_row_t *x)
{
    double load, server, workers, cons;
    rc_report_cpu_pct(x, &load, &server, &workers, &cons);
    if (load < 0)
        return "-";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    /* sinks-direct: the sinks are the server under test and the consumers; count them once */
    double total =
        load + (server > 0 ? server : 0) + (strcmp(x->system, "sinks-direct") == 0 ? 0 : cons);
    if (load >= 90)
        return "loadgen";
    if (server >= 90)
        return "server";
    if (cons >= 90)
        return "consumers";
    if (total >= 90.0 * (double)(cpus > 0 ? cpus : 1))
        return "cpus";
    if (x->machine_busy_pct >= 90)
        return "machine";
    return "none";
}

/* "load / server (workers) / consumers" CPU % of one core, or "-". */
static void fmt_cpu(char *buf, size_t cap, const rc_row_t *x)
{
    double load, server, workers, cons;
    rc_report_cpu_pct(x, &load, &server, &workers, &cons);
    if (load < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    char w[24] = "";
    if (x->worker_cpu_s > 0)
        snprintf(w, sizeof(w), " (%.0f)", workers);
    char m[24] = "";
    if (x->machine_busy_pct >= 0)
        snprintf(m, sizeof(m), "; machine %.0f", x->machine_busy_pct);
    snprintf(buf, cap, "%.0f / %.0f%s / %.0f%s", load, server, w, cons, m);
}

void rc_report_table(const rc_report_t *r, const char *scenario, FILE *out)
{
    fprintf(out,
            "| scenario | params | system | events/s | p50 µs | p90 µs | p99 µs | p99.9 µs "
            "| max µs | lost | dups | errors | cpu s | events/cpu-s | RSS MiB (shm) | x ringcast "
            "| CPU %% load / server (workers) / consumers; machine busy | saturated |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            "---:|---:|---|\n");
    for (int i = 0; i < r->count; i++) {
        const rc_row_t *x = &r->rows[i];
        if (scenario != NULL && strcmp(x->scenario, scenario) != 0)
            continue;
        if (x->skipped) {
            fprintf(out, "| %s | %s | %s | skipped: %s |||||||||||||||\n", x->scenario, x->params,
                    x->system, x->note);
            continue;
        }
        char tp[32], p50[32], p90[32], p99[32], p999[32], mx[32], epc[32], ratio[32], cpu[64];
        fmt_cpu(cpu, sizeof(cpu), x);
        fmt_num(tp, sizeof(tp), x->throughput);
        fmt_num(p50, sizeof(p50), x->p50_us);
        fmt_num(p90, sizeof(p90), x->p90_us);
        fmt_num(p99, sizeof(p99), x->p99_us);
        fmt_num(p999, sizeof(p999), x->p999_us);
        fmt_num(mx, sizeof(mx), x->max_us);
        fmt_num(epc, sizeof(epc), x->cpu_s > 0 ? (double)x->events / x->cpu_s : -1);
        const rc_row_t *rc = ringcast_row(r, x);
        if (rc != NULL && rc->throughput > 0)
            snprintf(ratio, sizeof(ratio), "%.2f", x->throughput / rc->throughput);
        else
            snprintf(ratio, sizeof(ratio), "-");
        fprintf(out,
                "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %llu | %llu | %llu | %.2f | %s | "
                "%.1f (%.1f) | %s | %s | %s |\n",
                x->scenario, x->params, x->system, tp, p50, p90, p99, p999, mx,
                (unsigned long long)x->lost, (unsigned long long)x->dups,
                (unsigned long long)x->errors, x->cpu_s, epc, x->rss_mib, x->rss_shm_mib, ratio,
                cpu, rc_report_saturated(x));
    }
    for (int i = 0; i < r->count; i++) {
        const rc_row_t *x = &r->rows[i];
        if ((scenario == NULL || strcmp(x->scenario, scenario) == 0) && !x->skipped && x->note[0])
            fprintf(out, "\n%s %s (%s): %s", x->scenario, x->system, x->params, x->note);
    }
    fprintf(out, "\n");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.6g", key, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

int rc_report_json(const rc_report_t *r, const char *path)
{
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -errno;
    fprintf(f, "{\"rows\": [");
    for (int i = 0; i < r->count; i++) {
        const rc_row_t *x = &r->rows[i];
        fprintf(f, "%s\n  {\"scenario\": ", i ? "," : "");
        json_str(f, x->scenario);
        fprintf(f, ", \"system\": ");
        json_str(f, x->system);
        fprintf(f, ", \"params\": ");
        json_str(f, x->params);
        fprintf(f, ", \"skipped\": %s", x->skipped ? "true" : "false");
        if (x->note[0]) {
            fprintf(f, ", \"note\": ");
            json_str(f, x->note);
        }
        if (!x->skipped) {
            json_num(f, "throughput", x->throughput);
            json_num(f, "p50_us", x->p50_us);
            json_num(f, "p90_us", x->p90_us);
            json_num(f, "p99_us", x->p99_us);
            json_num(f, "p999_us", x->p999_us);
            json_num(f, "max_us", x->max_us);
            fprintf(f, ", \"events\": %llu, \"lost\": %llu, \"dups\": %llu, \"errors\": %llu",
                    (unsigned long long)x->events, (unsigned long long)x->lost,
                    (unsigned long long)x->dups, (unsigned long long)x->errors);
            json_num(f, "cpu_s", x->cpu_s);
            json_num(f, "events_per_cpu_s", x->cpu_s > 0 ? (double)x->events / x->cpu_s : 0);
            json_num(f, "rss_mib", x->rss_mib);
            json_num(f, "rss_shm_mib", x->rss_shm_mib);
            json_num(f, "client_cpu_s", x->client_cpu_s);
            json_num(f, "consumer_cpu_s", x->consumer_cpu_s);
            json_num(f, "worker_cpu_s", x->worker_cpu_s);
            json_num(f, "wall_s", x->wall_s);
            double load, server, workers, cons;
            rc_report_cpu_pct(x, &load, &server, &workers, &cons);
            json_num(f, "load_cpu_pct", load);
            json_num(f, "server_cpu_pct", server);
            json_num(f, "workers_cpu_pct", workers);
            json_num(f, "consumers_cpu_pct", cons);
            json_num(f, "machine_busy_pct", x->machine_busy_pct);
            fprintf(f, ", \"saturated\": ");
            json_str(f, rc_report_saturated(x));
            fprintf(f, ", \"consumers\": %d", x->consumers);
            json_num(f, "rate", x->rate);
            if (x->has_fsyncs) {
                json_num(f, "fsyncs_per_s", x->fsyncs_per_s);
                json_num(f, "events_per_fsync", x->events_per_fsync);
                json_num(f, "fsync_mean_us", x->fsync_mean_us);
                json_num(f, "durable_events", x->durable_events);
            }
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n]}\n");
    return fclose(f) == 0 ? 0 : -errno;
}

/* ---- SVG -------------------------------------------------------------------------------- */

static const char *const colours[] = {"#d62728", "#1f77b4", "#2ca02c",
                                      "#ff7f0e", "#9467bd", "#8c564b"};

typedef struct {
    const char *items[32];
    int n;
} names_t;

static int names_index(names_t *s, const char *v)
{
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->items[i], v) == 0)
            return i;
    }
    if (s->n == 32)
        return -1;
    s->items[s->n] = v;
    return s->n++;
}

static double metric(const rc_row_t *x, int panel)
{
    return panel == 0 ? x->throughput : panel == 1 ? x->p50_us : x->p99_us;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

int rc_report_svg(const rc_report_t *r, const char *scenario, const char *path)
{
    names_t groups = {0}, systems = {0};
    for (int i = 0; i < r->count; i++) {
        const rc_row_t *x = &r->rows[i];
        if (strcmp(x->scenario, scenario) == 0 && !x->skipped) {
            names_index(&groups, x->params);
            names_index(&systems, x->system);
        }
    }
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -errno;
    const int pw = 300, ph = 220, top = 60, left = 70, gap = 80;
    const int width = left + 3 * (pw + gap), height = top + ph + 110;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"22\" font-size=\"15\">ringcast-bench %s</text>\n",
            width, height, left, scenario);
    static const char *const titles[] = {"throughput (events/s)", "p50 latency (µs, log)",
                                         "p99 latency (µs, log)"};
    for (int panel = 0; panel < 3; panel++) {
        int x0 = left + panel * (pw + gap), y0 = top;
        double vmax = 0, vmin = 1e300;
        for (int i = 0; i < r->count; i++) {
            const rc_row_t *x = &r->rows[i];
            if (strcmp(x->scenario, scenario) != 0 || x->skipped)
                continue;
            double v = metric(x, panel);
            if (v > vmax)
                vmax = v;
            if (v > 0 && v < vmin)
                vmin = v;
        }
        int logy = panel > 0;
        double lo = 0, hi = vmax > 0 ? vmax * 1.1 : 1;
        if (logy) {
            lo = floor(log10(vmin < 1e300 ? vmin : 1));
            hi = ceil(log10(vmax > 1 ? vmax : 10));
            if (hi <= lo)
                hi = lo + 1;
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", x0, y0 - 10,
                titles[panel]);
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                "stroke=\"#888\"/>\n",
                x0, y0, pw, ph);
        /* Axis ticks: 5 linear ticks, or one per decade. */
        int ticks = logy ? (int)(hi - lo) : 5;
        for (int t = 0; t <= ticks; t++) {
            double frac = (double)t / ticks;
            double v = logy ? pow(10, lo + (hi - lo) * frac) : hi * frac;
            int y = y0 + ph - (int)(frac * ph);
            char lab[32];
            fmt_num(lab, sizeof(lab), v);
            fprintf(f,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
                    x0, y, x0 + pw, y, x0 - 4, y + 4, lab);
        }
        int gw = groups.n ? pw / groups.n : pw;
        int bw = systems.n ? (gw - 10) / systems.n : gw;
        for (int g = 0; g < groups.n; g++) {
            int gx = x0 + g * gw + 5;
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", gx + (gw - 10) / 2,
                    y0 + ph + 14);
            xml_text(f, groups.items[g]);
            fprintf(f, "</text>\n");
            for (int i = 0; i < r->count; i++) {
                const rc_row_t *x = &r->rows[i];
                if (strcmp(x->scenario, scenario) != 0 || x->skipped ||
                    strcmp(x->params, groups.items[g]) != 0)
                    continue;
                int s = names_index(&systems, x->system);
                double v = metric(x, panel);
                double frac = logy ? (v > 0 ? (log10(v) - lo) / (hi - lo) : 0) : v / hi;
                if (frac < 0)
                    frac = 0;
                if (frac > 1)
                    frac = 1;
                int h = (int)(frac * ph);
                fprintf(f,
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                        "<title>%s %s: %.1f</title></rect>\n",
                        gx + s * bw, y0 + ph - h, bw > 2 ? bw - 2 : 1, h, colours[s % 6], x->system,
                        x->params, v);
            }
        }
    }
    for (int s = 0; s < systems.n; s++) {
        int lx = left + s * 150, ly = top + ph + 50;
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">",
                lx, ly, colours[s % 6], lx + 16, ly + 10);
        xml_text(f, systems.items[s]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -errno;
}

int rc_report_write_dir(const rc_report_t *r, const char *dir)
{
    char path[1024];
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "ringcast-bench: cannot create %s: %s\n", dir, strerror(errno));
        return -errno;
    }
    names_t scen = {0};
    for (int i = 0; i < r->count; i++)
        names_index(&scen, r->rows[i].scenario);
    snprintf(path, sizeof(path), "%s/report.md", dir);
    FILE *md = fopen(path, "we");
    if (md == NULL) {
        fprintf(stderr, "ringcast-bench: cannot write %s: %s\n", path, strerror(errno));
        return -errno;
    }
    for (int i = 0; i < scen.n; i++) {
        fprintf(md, "## %s\n\n", scen.items[i]);
        rc_report_table(r, scen.items[i], md);
        fprintf(md, "\n![%s](%s.svg)\n\n", scen.items[i], scen.items[i]);
    }
    fclose(md);
    snprintf(path, sizeof(path), "%s/report.json", dir);
    int rc = rc_report_json(r, path);
    if (rc < 0) {
        fprintf(stderr, "ringcast-bench: cannot write %s: %s\n", path, strerror(-rc));
        return rc;
    }
    for (int i = 0; i < scen.n; i++) {
        snprintf(path, sizeof(path), "%s/%s.svg", dir, scen.items[i]);
        rc = rc_report_svg(r, scen.items[i], path);
        if (rc < 0) {
            fprintf(stderr, "ringcast-bench: cannot write %s: %s\n", path, strerror(-rc));
            return rc;
        }
    }
    return 0;
}
