/* Lightkeeper RUM: web vitals and front-end errors, sent with sendBeacon when the page is hidden.
   Page: the script tag's data-page (the route template), else the path (matched by the server). */
(function () {
  "use strict";
  var E = "__LK_ENDPOINT__", d = document, w = window, P = w.PerformanceObserver;
  if (!navigator.sendBeacon || w.__lk_rum) return;
  w.__lk_rum = 1;
  var s = d.currentScript, page = (s && s.getAttribute("data-page")) || location.pathname;
  var v = {}, errs = [], sent = 0, inter = {}, cls = 0, win = 0, wFirst = 0, wLast = 0;

  function device() {
    var ud = navigator.userAgentData, coarse = w.matchMedia && w.matchMedia("(pointer:coarse)").matches;
    if (ud && ud.mobile) return "mobile";
    if (coarse) return w.innerWidth < 768 ? "mobile" : "tablet";
    return "desktop";
  }
  function obs(type, cb, opts) {
    try {
      if (P && P.supportedEntryTypes.indexOf(type) >= 0) {
        var o = new P(function (l) { l.getEntries().forEach(cb); });
        opts = opts || {};
        opts.type = type;
        opts.buffered = true;
        o.observe(opts);
      }
    } catch (e) { /* an old browser: that vital is left out */ }
  }
  obs("largest-contentful-paint", function (e) { v.lcp = e.startTime; });
  obs("paint", function (e) { if (e.name === "first-contentful-paint") v.fcp = e.startTime; });
  obs("layout-shift", function (e) {
    if (e.hadRecentInput) return;
    // Session windows: shifts < 1 s apart, at most 5 s long; CLS is the largest window.
    if (win && e.startTime - wLast < 1000 && e.startTime - wFirst < 5000) win += e.value;
    else { win = e.value; wFirst = e.startTime; }
    wLast = e.startTime;
    if (win > cls) cls = win;
    v.cls = cls;
  });
  function interaction(e) {
    if (!e.interactionId) return;
    inter[e.interactionId] = Math.max(inter[e.interactionId] || 0, e.duration);
  }
  obs("event", interaction, { durationThreshold: 16 });
  obs("first-input", interaction);

  function inp() {
    // The 98th percentile of interactions: the worst one, ignoring one per 50.
    var all = Object.keys(inter).map(function (k) { return inter[k]; }).sort(function (a, b) { return b - a; });
    return all.length ? all[Math.min(all.length - 1, Math.floor(all.length / 50))] : undefined;
  }
  function ttfb() {
    var n = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    return n ? Math.max(0, n.responseStart - (n.activationStart || 0)) : undefined;
  }
  function err(kind, x) {
    if (errs.length >= 10) return;
    x = x || {};
    errs.push({
      kind: kind,
      name: String(x.name || "Error").slice(0, 64),
      message: String(x.message || x).slice(0, 500),
      stack: String(x.stack || "").slice(0, 2000)
    });
  }
  w.addEventListener("error", function (e) { err("error", e.error || { message: e.message }); });
  w.addEventListener("unhandledrejection", function (e) { err("rejection", e.reason); });

  function send() {
    var b = { page: page.slice(0, 512), device: device(), errors: errs.splice(0, 10) };
    if (!sent) {
      sent = 1;
      v.inp = inp();
      v.ttfb = ttfb();
      var out = {};
      for (var k in v) if (typeof v[k] === "number" && v[k] >= 0 && v[k] < 12e4) out[k] = Math.round(v[k] * 1e4) / 1e4;
      b.vitals = out;
    } else if (!b.errors.length) return;
    navigator.sendBeacon(E, JSON.stringify(b));
  }
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") send(); });
  w.addEventListener("pagehide", send);
})();
