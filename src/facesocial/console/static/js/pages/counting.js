// Placeholder until this view is written.
import { el } from "../ui.js";

export default {
  path: "counting",
  title: "Counting",
  render(root) {
    root.append(el("p", {}, "Not written yet."));
  },
};
