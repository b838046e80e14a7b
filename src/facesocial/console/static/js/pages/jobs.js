// Placeholder until this view is written.
import { el } from "../ui.js";

export default {
  path: "jobs",
  title: "Jobs",
  render(root) {
    root.append(el("p", {}, "Not written yet."));
  },
};
