/* qbank's answer model (qbank/answers.py) for typed answers in the page: the same rules, so the page accepts
   what `qbank check` accepts. tests/test_html.py compares the two on a corpus of answers. */
const qbAnswers = (function () {
  "use strict";
  const NUM = String.raw`(?<![A-Za-z0-9_.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_])`;
  const SPECIAL = String.raw`(?<![A-Za-z0-9_.])[-+]?(?:nan|inf)(?![A-Za-z0-9_])`;
  const TOKEN = new RegExp(
    `(${NUM}|${SPECIAL})|([\\[(])|([\\])])|(,)|(\\.\\.\\.|…)|([=:;])|([^\\s\\[\\](),=:;]+)`, "g");
  const KINDS = ["num", "open", "close", "comma", "rest", "punct", "word"];
  const WRAPPERS = new Set(["torch.size", "size", "tensor", "torch.tensor", "array", "np.array", "numpy.array"]);
  const CONSTANTS = new Map([["true", "True"], ["false", "False"], ["none", "None"], ["null", "None"]]);
  const SHAPE_X = /^\s*\d+(?:\s*[x×]\s*\d+)+\s*$/;
  const APPROX = /^\s*(?:approximately|approx\.?|about|around|roughly|≈|~)\s*/i;
  const NO_ERROR = new RegExp("^(?:none|no error|no errors|no exception|nothing|no error is raised|it runs|runs fine" +
    "|runs without (?:an )?error|no error: the code runs to the end|no error \\(the code runs to the end\\))$");
  const RAISES = /^(?:it\s+)?(?:raises|throws|gives|a|an)\s+(?:an?\s+)?/i;
  const ERROR_TYPE = /^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|StopIteration))(?:\s*:\s*([\s\S]*))?$/;

  function number(text) {
    const lower = text.toLowerCase();
    if (lower.includes("nan")) return {t: "num", v: NaN, s: 0};
    if (lower.includes("inf")) return {t: "num", v: lower.startsWith("-") ? -Infinity : Infinity, s: 0};
    const parts = lower.split("e");
    const decimals = (parts[0].split(".")[1] || "").length;
    if (decimals === 0 && parts.length === 1) return {t: "num", v: Number(lower), s: 0};
    return {t: "num", v: Number(lower), s: 0.5 * Math.pow(10, Number(parts[1] || 0) - decimals)};
  }

  function tokens(text) {
    return Array.from(text.matchAll(TOKEN), function (m) {
      return [KINDS[m.slice(1).findIndex(function (g) { return g !== undefined; })], m[0]];
    });
  }

  function isKeyword(element) {
    return element.length >= 2 && element[0].t === "word" && element[1].t === "word" && element[1].v === "=";
  }

  function unwrap(items) {
    const out = [];
    items.forEach(function (item) {
      const last = out[out.length - 1];
      if (item.t === "seq" && last && last.t === "word" && WRAPPERS.has(last.v.toLowerCase())) {
        const positional = item.v.filter(function (e) { return !isKeyword(e); });
        if (positional.length === 1) { out.splice(out.length - 1, 1, ...positional[0]); return; }
      }
      out.push(item);
    });
    return out;
  }

  function elements(toks, pos, closing) {
    const found = [];
    let current = [];
    while (pos.at < toks.length) {
      const [kind, text] = toks[pos.at++];
      if (kind === "close") {
        if (closing) break;
        current.push({t: "word", v: text});
      } else if (kind === "comma") { found.push(current); current = []; }
      else if (kind === "open") current.push({t: "seq", v: elements(toks, pos, true)});
      else if (kind === "num") current.push(number(text));
      else if (kind === "rest") current.push({t: "rest"});
      else if (kind === "word" && CONSTANTS.has(text.toLowerCase())) current.push({t: "const", v: CONSTANTS.get(text.toLowerCase())});
      else current.push({t: "word", v: text});
    }
    if (current.length || found.length) found.push(current);
    return found.filter(function (e) { return e.length; }).map(unwrap);
  }

  function valueOf(text) {
    const body = text.replace(APPROX, "");
    if (SHAPE_X.test(body)) {
      return {t: "seq", v: body.match(/\d+/g).map(function (d) { return [{t: "num", v: Number(d), s: 0}]; })};
    }
    const found = elements(tokens(body), {at: 0}, false);
    if (found.length === 1 && found[0].length === 1 && found[0][0].t === "seq") return found[0][0];
    return {t: "seq", v: found};
  }

  function messageItems(message) {
    const items = [];
    tokens(message).forEach(function ([kind, text]) {
      if (kind === "num") items.push(number(text));
      else if (kind === "word") { const word = text.replace(/\.+$/, ""); if (word) items.push({t: "word", v: word}); }
      else if (kind !== "rest") items.push({t: "word", v: text});
    });
    return items;
  }

  function parseError(text) {
    const body = text.split(/\s+/).filter(Boolean).join(" ");
    const undotted = body.replace(/\.+$/, "");
    if (NO_ERROR.test(undotted.toLowerCase())) return {error: true, type: null, message: null, cut: false};
    const match = ERROR_TYPE.exec(undotted.replace(RAISES, ""));
    if (!match) return null;
    const kind = match[1].split(".").pop();
    const message = (match[2] || "").trim();
    if (!message) return {error: true, type: kind, message: null, cut: false};
    const cut = body.endsWith("…") || body.endsWith("...");
    return {error: true, type: kind, message: messageItems(message.replace(/[…. ]+$/, "")), cut: cut};
  }

  function close(a, b, tolerance) {
    if (Number.isNaN(a.v) || Number.isNaN(b.v)) return Number.isNaN(a.v) && Number.isNaN(b.v);
    if (!Number.isFinite(a.v) || !Number.isFinite(b.v)) return a.v === b.v;
    // The finer of the two precisions, as for typed answers in Python (answers.same's default).
    const slack = Math.min(a.s, b.s) + tolerance;
    return Math.abs(a.v - b.v) <= slack + 1e-12 * Math.max(Math.abs(a.v), Math.abs(b.v), 1);
  }

  function sameItem(a, b, tolerance) {
    if (a.t !== b.t) return false;
    if (a.t === "num") return close(a, b, tolerance);
    if (a.t === "seq") return sameElements(a.v, b.v, tolerance);
    return a.t === "rest" || a.v === b.v;
  }

  function sameItems(a, b, tolerance) {
    return a.length === b.length && a.every(function (x, i) { return sameItem(x, b[i], tolerance); });
  }

  function gap(found) { return found.findIndex(function (e) { return e.length === 1 && e[0].t === "rest"; }); }

  function sameElements(a, b, tolerance) {
    const gapA = gap(a), gapB = gap(b);
    if ((gapA < 0) === (gapB < 0)) {
      return a.length === b.length && a.every(function (x, i) { return sameItems(x, b[i], tolerance); });
    }
    const [short, full, at] = gapA >= 0 ? [a, b, gapA] : [b, a, gapB];
    const head = short.slice(0, at), tail = short.slice(at + 1);
    if (head.length + tail.length > full.length) return false;
    return head.every(function (x, i) { return sameItems(x, full[i], tolerance); }) &&
      tail.every(function (x, i) { return sameItems(x, full[full.length - tail.length + i], tolerance); });
  }

  function sameError(a, b, tolerance) {
    if (a.type !== b.type) return false;
    if (!a.message || !b.message) return true;
    const [shorter, longer] = a.message.length <= b.message.length ? [a, b] : [b, a];
    let head = shorter.message, whole = longer.message.slice(0, head.length);
    if (shorter.cut && head.length) {
      const last = head[head.length - 1], other = whole[whole.length - 1];
      const prefix = last.t === "word" && other.t === "word" && other.v.startsWith(last.v);
      if (!(prefix || last.t === "num")) return false;
      head = head.slice(0, -1);
      whole = whole.slice(0, -1);
    }
    return sameItems(head, whole, tolerance);
  }

  function words(text) {
    return {t: "seq", v: [text.split(/\s+/).filter(Boolean).map(function (w) { return {t: "word", v: w}; })]};
  }

  function parse(text, errors) {
    if (errors) { const claim = parseError(text); if (claim) return claim; }
    try {
      return valueOf(text);
    } catch (error) {  // brackets nested too deeply to read: compared as words, as in Python
      if (error instanceof RangeError) return words(text);
      throw error;
    }
  }

  /* Whether two answer texts mean the same; `errors`: they are about exceptions. */
  function same(a, b, options) {
    const tolerance = (options && options.tolerance) || 0, errors = Boolean(options && options.errors);
    const left = parse(a, errors), right = parse(b, errors);
    if (left.error || right.error) return Boolean(left.error && right.error) && sameError(left, right, tolerance);
    return sameElements(left.v, right.v, tolerance);
  }

  return Object.freeze({same: same});
})();
