// Inline SVG icons (24×24, currentColor): crisp at any size, no font or image requests.

const PATHS = {
  play: "M8 5.5v13l10.5-6.5z",
  pause: "M7 5h3.5v14H7zM13.5 5H17v14h-3.5z",
  start: "M6 5h2v14H6zM19 5.5v13L9.5 12z",
  end: "M16 5h2v14h-2zM5 5.5v13L14.5 12z",
  back: "M15.5 5.5v13L6 12zM17 5.5h1.8v13H17z",
  forward: "M8.5 5.5v13L18 12zM5.2 5.5H7v13H5.2z",
  trash: "M9 3h6l1 2h4v2H4V5h4zM6 9h12l-1 12H7zm4 2v8h1.5v-8zm3 0v8h1.5v-8z",
  upload: "M12 3l5 5h-3.5v6h-3V8H7zM5 17h14v3H5z",
  gauge: "M12 4a9 9 0 0 0-9 9h2.5a6.5 6.5 0 0 1 13 0H21a9 9 0 0 0-9-9zm4.2 4.3-5.1 3.9a1.6 1.6 0 1 0 2 2z",
  export: "M12 16l-5-5h3.5V4h3v7H17zM5 18h14v2H5z",
  logo: "M8 4.5v15L20 12z",
  undo: "M12.5 8c-2.65 0-5.05 1-6.9 2.6L2 7v9h9l-3.6-3.6a8 8 0 0 1 12.7 3.6l2.4-.8A10.5 10.5 0 0 0 12.5 8z",
  redo: "M18.4 10.6A10.5 10.5 0 0 0 1.5 15.2l2.4.8a8 8 0 0 1 12.7-3.6L13 16h9V7z",
  check: "M9.5 16.2 5.3 12l-1.4 1.4 5.6 5.6 12-12-1.4-1.4z",
};

export function icon(name) {
  return `<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path d="${PATHS[name]}" fill="currentColor"/></svg>`;
}

/** Fill every element carrying data-icon="name" with its icon. */
export function placeIcons(root = document) {
  for (const el of root.querySelectorAll("[data-icon]")) {
    el.insertAdjacentHTML("afterbegin", icon(el.dataset.icon));
  }
}
