// The runbook's search: plain JavaScript over window.HACOMPILE_SEARCH,
// which assets/search-index.js defines. No fetch (file:// forbids it),
// no framework, no network.
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
  var entries = window.HACOMPILE_SEARCH || [];
  var haystack = entries.map(function (e) {
    return (e.t + " " + (e.x || "") + " " + e.k).toLowerCase();
  });
  var active = -1;
  var max = 40;

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
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "No match for \u201c" + q + "\u201d";
      list.appendChild(none);
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
      var more = document.createElement("li");
      more.className = "none";
      more.textContent = (hits.length - max) + " more: refine the search";
      list.appendChild(more);
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
