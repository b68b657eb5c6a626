package report

import (
	"fmt"
	"path"
	"sort"
)

// NearMember is one image of a near-duplicate group (a row of the
// near-duplicates stage's groups output): the first member of a group is
// its representative, the image kept.
type NearMember struct {
	Group      int64
	Item, Path string
	Similarity float64
}

// NearDuplicates are the near-duplicate groups across the collection.
type NearDuplicates struct {
	Groups int         `json:"groups"`
	Copies int         `json:"copies"` // members beyond each group's representative
	List   []NearGroup `json:"list"`   // the first Options.Groups + Options.TableRows groups, by group id
}

// NearGroup is one group; Members[0] is the representative, kept.
type NearGroup struct {
	ID      int64            `json:"id"`
	Size    int              `json:"size"`
	Members []NearGroupImage `json:"members"` // the first Options.GroupCopies
}

// NearGroupImage is one member as summary.json lists it.
type NearGroupImage struct {
	Item       string  `json:"item"`
	Path       string  `json:"path"`
	Similarity float64 `json:"similarity"` // to the representative
}

// nearDuplicates summarises the groups, capped like the duplicate
// groups; nil when they are not known.
func nearDuplicates(in []NearMember, opt Options) *NearDuplicates {
	if in == nil {
		return nil
	}
	out := &NearDuplicates{}
	byID := map[int64]int{} // group id → index in all
	var all []NearGroup
	for _, m := range in {
		i, ok := byID[m.Group]
		if !ok {
			i = len(all)
			byID[m.Group] = i
			all = append(all, NearGroup{ID: m.Group})
		} else {
			out.Copies++
		}
		g := &all[i]
		g.Size++
		if len(g.Members) < opt.GroupCopies {
			g.Members = append(g.Members, NearGroupImage{Item: m.Item, Path: m.Path, Similarity: m.Similarity})
		}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].ID < all[b].ID })
	out.Groups = len(all)
	out.List = capped(all, opt.Groups+opt.TableRows)
	return out
}

type nearView struct {
	Groups, Copies int
	Shown          []nearGroupView // with thumbnails
	Rows           []nearGroupView // listed without
	More           int             // neither
}

type nearGroupView struct {
	ID      int64
	Size    int
	Members []nearMemberView
	More    int
}

type nearMemberView struct {
	Path, Base, Item, ItemShort string
	Similarity                  string
	Kept                        bool
	Thumb                       thumbView
}

// nearOf lays the groups out side by side: the first Options.Groups with
// thumbnails, then a compact table.
func (r *Report) nearOf(n *NearDuplicates) *nearView {
	if n == nil {
		return nil
	}
	v := &nearView{Groups: n.Groups, Copies: n.Copies, More: n.Groups - len(n.List)}
	for gi, g := range n.List {
		gv := nearGroupView{ID: g.ID, Size: g.Size, More: g.Size - len(g.Members)}
		for mi, m := range g.Members {
			mv := nearMemberView{Path: m.Path, Base: path.Base(m.Path), Item: m.Item, ItemShort: shortID(m.Item),
				Similarity: fmt.Sprintf("%.3f", m.Similarity), Kept: mi == 0}
			if gi < r.opt.Groups {
				mv.Thumb = r.thumbView(m.Item, m.Path)
			}
			gv.Members = append(gv.Members, mv)
		}
		if gi < r.opt.Groups {
			v.Shown = append(v.Shown, gv)
		} else {
			v.Rows = append(v.Rows, gv)
		}
	}
	return v
}

// nearShown is the items whose thumbnails the near-duplicates section shows.
func (n *NearDuplicates) shown(groups int) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, g := range n.List[:min(len(n.List), groups)] {
		for _, m := range g.Members {
			out = append(out, m.Item)
		}
	}
	return out
}
