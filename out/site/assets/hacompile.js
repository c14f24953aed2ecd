// The runbook's search: plain JavaScript over the search index:
// assets/search-index.js defines the site's own entries
// (window.HACOMPILE_SEARCH) and lists the stacks' parts
// (window.HACOMPILE_SEARCH_PARTS: one a stack, and a large stack's host
// parts), each a script that adds its entries under its path to
// window.HACOMPILE_SEARCH_PART. The index is
// large (every setting, file and directive of every stack), so a page
// loads it on the search box's first use, not with the page: <script>s
// added then rather than fetch(), which file:// forbids. No framework,
// no network.
(function () {
  "use strict";
  // Paper cannot click: print every collapsed section open.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) {
      d.setAttribute("open", "");
      d.setAttribute("data-print-opened", "");
    });
  });
  window.addEventListener("afterprint", function () {
    document.querySelectorAll("details[data-print-opened]").forEach(function (d) {
      d.removeAttribute("open");
      d.removeAttribute("data-print-opened");
    });
  });
  var input = document.getElementById("search");
  var list = document.getElementById("search-results");
  if (!input || !list) {
    return;
  }
  var root = document.body.getAttribute("data-root") || "";
  var entries = null;
  var haystack = null;
  var loading = false;
  var failed = ""; // the script that did not load
  var active = -1;
  var max = 40;

  // script adds a <script> of src (relative to the site root); ok or
  // fail runs when it has loaded or failed.
  function script(src, ok, fail) {
    var s = document.createElement("script");
    s.src = root + src;
    s.onload = ok;
    s.onerror = function () {
      s.parentNode.removeChild(s);
      fail(src);
    };
    document.head.appendChild(s);
  }

  // load adds the index's scripts once, the stacks' parts after the
  // index that lists them; render runs again when all are in, or one
  // failed.
  function load() {
    if (entries || loading) {
      return;
    }
    loading = true;
    failed = "";
    var fail = function (src) {
      if (loading) {
        loading = false;
        failed = src;
        if (input.value) {
          render(input.value);
        }
      }
    };
    script("assets/search-index.js", function () {
      var parts = window.HACOMPILE_SEARCH_PARTS || [];
      var left = parts.length;
      var done = function () {
        var got = window.HACOMPILE_SEARCH_PART || {};
        var all = (window.HACOMPILE_SEARCH || []).slice();
        // A large fleet's stack has a hundred parts: appended in place,
        // not copied whole for each.
        parts.forEach(function (p) {
          (got[p] || []).forEach(function (e) {
            all.push(e);
          });
        });
        entries = all;
        haystack = entries.map(function (e) {
          return (e.t + " " + (e.x || "") + " " + e.k).toLowerCase();
        });
        loading = false;
        if (input.value) {
          render(input.value);
        }
      };
      if (left === 0) {
        done();
        return;
      }
      parts.forEach(function (p) {
        script(p, function () {
          left--;
          if (left === 0 && loading) {
            done();
          }
        }, fail);
      });
    }, fail);
  }

  function note(text) {
    var li = document.createElement("li");
    li.className = "none";
    li.textContent = text;
    list.appendChild(li);
    list.hidden = false;
  }

  function score(e, i, terms) {
    var s = 0;
    var t = e.t.toLowerCase();
    for (var j = 0; j < terms.length; j++) {
      var term = terms[j];
      if (haystack[i].indexOf(term) < 0) {
        return -1;
      }
      if (t === term) {
        s += 100;
      } else if (t.indexOf(term) === 0) {
        s += 50;
      } else if (t.indexOf(term) >= 0) {
        s += 20;
      }
    }
    if (e.k === "stack" || e.k === "host") {
      s += 10;
    }
    return s;
  }

  function render(q) {
    var terms = q.toLowerCase().split(/\s+/).filter(Boolean);
    list.textContent = "";
    active = -1;
    if (terms.length === 0) {
      list.hidden = true;
      return;
    }
    if (!entries) {
      if (failed) {
        note("The search index (" + failed + ") did not load");
        return;
      }
      load();
      note("Loading the search index\u2026");
      return;
    }
    var hits = [];
    for (var i = 0; i < entries.length; i++) {
      var s = score(entries[i], i, terms);
      if (s >= 0) {
        hits.push({ s: s, i: i });
      }
    }
    hits.sort(function (a, b) {
      return b.s - a.s || a.i - b.i;
    });
    if (hits.length === 0) {
      note("No match for \u201c" + q + "\u201d");
    }
    hits.slice(0, max).forEach(function (h) {
      var e = entries[h.i];
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + e.u;
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e.k;
      var title = document.createElement("span");
      title.className = "title";
      title.textContent = e.t;
      a.appendChild(kind);
      a.appendChild(title);
      if (e.x) {
        var text = document.createElement("span");
        text.className = "text";
        text.textContent = e.x;
        a.appendChild(text);
      }
      li.appendChild(a);
      list.appendChild(li);
    });
    if (hits.length > max) {
      note((hits.length - max) + " more: refine the search");
    }
    list.hidden = false;
  }

  function move(d) {
    var items = list.querySelectorAll("li a");
    if (items.length === 0) {
      return;
    }
    if (active >= 0 && items[active]) {
      items[active].parentNode.classList.remove("active");
    }
    active = (active + d + items.length) % items.length;
    items[active].parentNode.classList.add("active");
    items[active].scrollIntoView({ block: "nearest" });
  }

  input.addEventListener("input", function () {
    render(input.value);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowDown") {
      move(1);
      ev.preventDefault();
    } else if (ev.key === "ArrowUp") {
      move(-1);
      ev.preventDefault();
    } else if (ev.key === "Enter") {
      var items = list.querySelectorAll("li a");
      var a = items[active >= 0 ? active : 0];
      if (a) {
        window.location.href = a.href;
      }
    } else if (ev.key === "Escape") {
      input.value = "";
      render("");
    }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "/" && document.activeElement !== input) {
      input.focus();
      ev.preventDefault();
    }
  });
  document.addEventListener("click", function (ev) {
    if (!list.contains(ev.target) && ev.target !== input) {
      list.hidden = true;
    }
  });
  input.addEventListener("focus", function () {
    // The reader means to search: the index loads while they type.
    load();
    if (input.value) {
      render(input.value);
    }
  });
})();

// Command blocks get a copy button: the exact text of the commands,
// without the prompt a reader would otherwise select by hand at 3 a.m.
(function () {
  "use strict";
  function fallbackCopy(text) {
    // file:// pages may have no clipboard API: copy through a selection.
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "absolute";
    ta.style.left = "-9999px";
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(ta);
    return ok;
  }
  document.querySelectorAll(".cmd").forEach(function (block) {
    var code = block.querySelector("pre");
    if (!code) {
      return;
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy these commands");
    button.addEventListener("click", function () {
      var text = code.innerText.replace(/\n+$/, "") + "\n";
      function done(ok) {
        button.textContent = ok ? "Copied" : "Select and copy";
        window.setTimeout(function () {
          button.textContent = "Copy";
        }, 2000);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () {
          done(true);
        }, function () {
          done(fallbackCopy(text));
        });
      } else {
        done(fallbackCopy(text));
      }
    });
    block.appendChild(button);
  });
})();

// A search hit on a directive links to "#<file section>:<line>": the
// listing's line is marked and scrolled into view. Listings keep their
// lines as the text of one <pre>, so the line is found by counting
// newlines and marked with a box laid over it.
(function () {
  "use strict";
  function show() {
    var old = document.querySelector(".line-mark");
    if (old) {
      old.parentNode.removeChild(old);
    }
    var m = /^#(.+):(\d+)$/.exec(decodeURIComponent(location.hash));
    if (!m) {
      return;
    }
    var sec = document.getElementById(m[1]);
    var pre = sec && sec.querySelector(".listing pre");
    if (!pre) {
      return;
    }
    var want = parseInt(m[2], 10);
    var walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    var line = 1;
    var start = null;
    var end = null;
    var last = null;
    var node;
    while (!end && (node = walker.nextNode())) {
      var t = node.nodeValue;
      last = node;
      for (var i = 0; i < t.length; i++) {
        if (line === want && !start) {
          start = [node, i];
        }
        if (t.charAt(i) === "\n") {
          line++;
          if (start) {
            end = [node, i];
            break;
          }
        }
      }
    }
    if (!start) {
      return;
    }
    if (!end) {
      end = [last, last.nodeValue.length];
    }
    var range = document.createRange();
    range.setStart(start[0], start[1]);
    range.setEnd(end[0], end[1]);
    var rects = range.getClientRects();
    var r = rects.length ? rects[0] : range.getBoundingClientRect();
    var box = pre.getBoundingClientRect();
    var mark = document.createElement("div");
    mark.className = "line-mark";
    mark.setAttribute("data-line", String(want));
    mark.setAttribute("data-text", range.toString());
    mark.style.top = (r.top - box.top + pre.scrollTop) + "px";
    mark.style.height = Math.max(r.height, 12) + "px";
    mark.style.width = pre.scrollWidth + "px";
    pre.appendChild(mark);
    window.scrollTo(0, window.scrollY + r.top - window.innerHeight / 3);
  }
  window.addEventListener("hashchange", show);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", show);
  } else {
    show();
  }
})();
